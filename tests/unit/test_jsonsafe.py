"""One JSON/base64 rule: binaries become base64 text as in Lambda's stream events, and come back as bytes."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime
from typing import Any

import pytest

from projector.jsonsafe import base64_text, jsonable, key_from_json

pytestmark = pytest.mark.unit


def test_binaries_anywhere_become_the_streams_base64_text() -> None:
    item = {
        "pk": {"B": b"\x00\xffkey"},
        "tags": {"BS": [bytearray(b"a"), memoryview(b"bc")]},
        "lines": {"L": [{"M": {"blob": {"B": b"\x01"}}}, {"S": "text"}]},
        "pair": (b"x", 1),
    }
    written = jsonable(item)
    assert written == {
        "pk": {"B": "AP9rZXk="},
        "tags": {"BS": ["YQ==", "YmM="]},
        "lines": {"L": [{"M": {"blob": {"B": "AQ=="}}}, {"S": "text"}]},
        "pair": ["eA==", 1],
    }
    assert json.loads(json.dumps(written)) == written  # plain JSON now
    assert item["pk"] == {"B": b"\x00\xffkey"}  # the input is copied, never changed


def test_other_leaves_go_through_the_callers_rule() -> None:
    moment = datetime(2026, 1, 2, tzinfo=UTC)
    written = jsonable({"at": moment, "n": 1}, lambda v: v.timestamp() if isinstance(v, datetime) else v)
    assert written == {"at": moment.timestamp(), "n": 1}


@pytest.mark.parametrize(
    "key",
    [
        {"pk": {"S": "order#1"}, "sk": {"N": "7"}},
        {"pk": {"B": b"\x00\x01\xfe"}},
        {"pk": {"B": b""}, "sk": {"S": "B"}},
    ],
)
def test_a_key_written_as_json_reads_back_as_boto3_wants_it(key: dict[str, Any]) -> None:
    text = json.dumps(jsonable(key))
    assert key_from_json(json.loads(text)) == key


def test_no_key_stays_no_key_and_bytes_stay_bytes() -> None:
    assert key_from_json(None) is None
    assert jsonable(None) is None
    assert key_from_json({"pk": {"B": b"raw"}}) == {"pk": {"B": b"raw"}}
    assert base64_text(b"\xfb\xff") == base64.b64encode(b"\xfb\xff").decode() == "+/8="
