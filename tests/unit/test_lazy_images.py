"""A MODIFY's OldImage is checked while the record is parsed and decoded only when read: same errors, same values."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from projector.changes import builders
from projector.changes.builders import change_from_record
from projector.changes.types import ChangeKind
from projector.records import MalformedRecordError, parse_record
from projector.records import types as record_types

pytestmark = pytest.mark.unit

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "records"


def fixture(name: str) -> dict[str, Any]:
    return json.loads((FIXTURES / f"{name}.json").read_text())


def eager(raw: dict[str, Any]) -> tuple[str, Any]:
    """What decoding every image up front gives: ("ok", (new, old)) or ("error", message)."""
    try:
        record = parse_record(copy.deepcopy(raw), 4)
        return "ok", (record.new_image(), record.old_image())
    except MalformedRecordError as error:
        return "error", str(error)


def lazy(raw: dict[str, Any]) -> tuple[str, Any]:
    try:
        change = change_from_record(parse_record(copy.deepcopy(raw), 4), 4)
    except MalformedRecordError as error:
        return "error", str(error)
    return "ok", (change.new_image, change.old_image)


scalars = st.sampled_from(
    [
        {"S": "x"},
        {"N": "1"},
        {"N": "1.0"},
        {"N": "abc"},
        {"N": "1_0"},
        {"N": "NaN"},
        {"N": 1},
        {"BOOL": True},
        {"BOOL": 1},
        {"BOOL": 1.0},
        {"NULL": True},
        {"NULL": 1},
        {"B": "@@"},
        {"SS": ["a", 1]},
        {"UUID": "x"},
        {"S": "x", "N": "1"},
        1,
        True,
        None,
        "text",
    ]
)
values = st.recursive(
    scalars,
    lambda kids: (
        st.builds(lambda m: {"L": m}, st.lists(kids, max_size=3))
        | st.builds(
            lambda m: {"M": m}, st.dictionaries(st.sampled_from(["a", "b", "total"]), kids, max_size=3)
        )
    ),
    max_leaves=6,
)
NAMES = st.sampled_from(["status", "total", "items", "flag", "note", "extra"])


def bools_as_numbers(value: Any) -> Any:
    """An equal value (``1 == True``) that is malformed wherever the original held a bool."""
    if isinstance(value, dict):
        return {key: bools_as_numbers(item) for key, item in value.items()}
    if isinstance(value, list):
        return [bools_as_numbers(item) for item in value]
    return int(value) if isinstance(value, bool) else value


@settings(max_examples=200, suppress_health_check=[HealthCheck.too_slow])
@given(NAMES, values, NAMES, values, st.sampled_from(["copy", "bools as numbers", "other"]))
def test_checked_old_image_fails_and_decodes_exactly_like_a_full_decode(
    new_name: str, new_value: Any, old_name: str, old_value: Any, how: str
) -> None:
    """Damage or change both images (often an equal value on both sides, as a MODIFY mostly has)."""
    raw = fixture("modify")
    raw["dynamodb"]["NewImage"][new_name] = new_value
    twin = {"copy": copy.deepcopy, "bools as numbers": bools_as_numbers}.get(how)
    raw["dynamodb"]["OldImage"][new_name if twin else old_name] = twin(new_value) if twin else old_value
    assert lazy(raw) == eager(raw)


@pytest.mark.parametrize(
    ("new", "old", "field"),
    [
        ({"BOOL": True}, {"BOOL": 1}, "dynamodb.OldImage.flag"),
        ({"NULL": True}, {"NULL": 1.0}, "dynamodb.OldImage.flag"),
        ({"L": [{"S": "a"}, {"BOOL": True}]}, {"L": [{"S": "a"}, {"BOOL": 1}]}, "dynamodb.OldImage.flag[1]"),
        ({"M": {"on": {"BOOL": False}}}, {"M": {"on": {"BOOL": 0}}}, "dynamodb.OldImage.flag.on"),
    ],
)
def test_a_number_equal_to_a_bool_is_still_malformed(new: Any, old: Any, field: str) -> None:
    """Python's == says 1 == True: the check must not take an OldImage attribute as valid because of it."""
    raw = fixture("modify")
    raw["dynamodb"]["NewImage"]["flag"] = new
    raw["dynamodb"]["OldImage"]["flag"] = old
    assert new == old  # the trap
    with pytest.raises(MalformedRecordError) as caught:
        change_from_record(parse_record(raw, 2), 2)
    assert caught.value.field == field
    assert caught.value.record_index == 2


def test_a_modify_decodes_its_old_image_only_when_read(monkeypatch: pytest.MonkeyPatch) -> None:
    raw = fixture("modify")
    decoded: list[int] = []
    real = record_types.decode_image

    def counting(image: Any) -> Any:
        decoded.append(id(image))
        return real(image)

    monkeypatch.setattr(record_types, "decode_image", counting)
    monkeypatch.setattr(builders, "decode_image", counting)
    record = parse_record(raw, 0)
    change = change_from_record(record, 0)
    old_id = id(raw["dynamodb"]["OldImage"])
    assert old_id not in decoded
    assert change.old_image == parse_record(fixture("modify"), 0).old_image()
    assert change.old_image["status"] == "PENDING"
    assert decoded.count(old_id) == 1  # once, then kept
    assert change.kind is ChangeKind.MODIFY


@pytest.mark.parametrize("name", ["remove", "ttl_remove"])
def test_a_remove_decodes_its_old_image_at_once(name: str) -> None:
    raw = fixture(name)
    raw["dynamodb"]["OldImage"]["total"] = {"N": "not a number"}
    with pytest.raises(MalformedRecordError, match=r"dynamodb\.OldImage\.total: N value is not a number"):
        change_from_record(parse_record(raw, 0), 0)


def test_keys_are_decoded_once_and_never_shared() -> None:
    record = parse_record(fixture("insert"), 0)
    first, second = record.keys(), record.keys()
    assert first == second == {"order_id": "ord-20240501-0001"}
    assert first is not second
