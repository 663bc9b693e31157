"""Both writers' fold steps reject a change the same way: poison, and the item keeps the last accepted state.

Checked without servers, at the step that turns an item's changes into its write (``_TargetWrite._fold``
for OpenSearch, ``_ApplyCall._plan`` for aggregates). All but the last test were written against the code
before issue 15 and pass on both; the last one pins the aggregate sink's one change of behaviour.
"""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import pytest

from projector.changes import Change, ChangeKind
from projector.changes.batch import ItemChanges
from projector.config import Settings
from projector.projection.base import DocumentProjection
from projector.retry import Deadline
from projector.sinks.aggregates import AggregateSink
from projector.sinks.aggregates.keys import generation_sk, item_pk
from projector.sinks.aggregates.plans import AggregateResult
from projector.sinks.aggregates.records import StoredRecord
from projector.sinks.aggregates.writer import _ApplyCall
from projector.sinks.opensearch.progress import ItemWrite
from projector.sinks.opensearch.types import WriteLimits
from projector.sinks.opensearch.writer import OpenSearchSink, _TargetWrite
from projector.versioning import ItemState
from tests.support.projections import TAGS
from tests.unit.test_fold_rejections import ATTRIBUTE, KEY, image, insert, modify, position, remove, replayed

pytestmark = pytest.mark.unit


# --- the OpenSearch writer's fold step ------------------------------------------------------------------

LOOSE = DocumentProjection(
    name="loose_orders",
    key_attributes=("order_id",),
    mappings={"properties": {"status": {"type": "keyword"}}},
    document=lambda item: None if item.get("hidden") else dict(item),
)


def folded_line(
    changes: list[Change], stored: ItemState | None = None, max_document_bytes: int = 10_000
) -> ItemWrite:
    sink = OpenSearchSink(
        None,  # type: ignore[arg-type]  # the fold step sends nothing
        Settings(opensearch_url="http://127.0.0.1:9"),
        limits=WriteLimits(max_document_bytes=max_document_bytes),
    )
    target = _TargetWrite(sink, None, LOOSE, "loose-index", Deadline.after(60))
    write = ItemWrite(ItemChanges("o-1", changes))
    write.stored = stored
    target._fold(write)
    return write


def written(write: ItemWrite) -> tuple[dict[str, Any], dict[str, Any]]:
    assert write.line is not None
    action, body = write.line.decode().splitlines()
    return json.loads(action), json.loads(body)


def test_opensearch_a_document_over_the_limit_in_the_middle_falls_back_to_the_state_before() -> None:
    first, big, late = insert(1, 1), modify(3, 2, note="x" * 2_000), modify(2, 3)
    write = folded_line([first, big, late], max_document_bytes=1_000)
    assert [c for c, _ in write.poison] == [big] and "exceeds the limit of 1000 bytes" in write.poison[0][1]
    _, body = written(write)
    assert body["version"] == 2 and body["_projector"]["rev"] == 2 and body["_projector"]["visible"]
    assert write.folded is not None and write.folded.last is late


def test_opensearch_a_reserved_field_or_an_inexact_number_at_the_end_is_poison() -> None:
    first = insert(1, 1)
    reserved = modify(2, 2, _projector="mine")
    inexact = modify(3, 3, total=Decimal("0.1000000000000000000001"))
    write = folded_line([first, reserved, inexact])
    assert [c for c, _ in write.poison] == [inexact, reserved] or [c for c, _ in write.poison] == [
        reserved,
        inexact,
    ]
    reasons = {id(c): reason for c, reason in write.poison}
    assert "reserves" in reasons[id(reserved)] and "exactly" in reasons[id(inexact)]
    action, body = written(write)
    assert body["version"] == 1 and action["index"]["version_type"] == "external"


def test_opensearch_a_projection_error_is_poison_and_a_hidden_document_is_not() -> None:
    def broken(item: dict[str, Any]) -> dict[str, Any] | None:
        if item["status"] == "v3":
            raise KeyError("total")
        return None if item["status"] == "v2" else dict(item)

    projection = LOOSE.model_copy(update={"document": broken})
    sink = OpenSearchSink(None, Settings(opensearch_url="http://127.0.0.1:9"))  # type: ignore[arg-type]
    target = _TargetWrite(sink, None, projection, "loose-index", Deadline.after(60))
    first, hidden, bad = insert(1, 1), modify(2, 2), modify(3, 3)
    write = ItemWrite(ItemChanges("o-1", [first, hidden, bad]))
    target._fold(write)
    assert [c for c, _ in write.poison] == [bad] and "KeyError" in write.poison[0][1]
    _, body = written(write)
    assert body == {"_projector": {**body["_projector"], "visible": False}} and body["_projector"]["rev"] == 2


def test_opensearch_a_tombstone_that_cannot_be_stored_is_a_rejected_delete() -> None:
    stored = ATTRIBUTE.advance(None, insert(1, 1))
    gone = remove(1, 2)
    write = folded_line([gone], stored=stored, max_document_bytes=10)
    assert [c for c, _ in write.poison] == [gone] and "exceeds the limit of 10 bytes" in write.poison[0][1]
    assert write.line is None and write.folded is not None and write.folded.state is None


def test_opensearch_every_change_rejected_writes_nothing() -> None:
    changes = [insert(1, 1), modify(2, 2), remove(2, 3)]
    write = folded_line(changes, max_document_bytes=10)
    assert sorted(c.batch_index for c, _ in write.poison) == [1, 2, 3]
    assert write.line is None


def test_opensearch_replays_of_an_oversized_record_are_all_poison() -> None:
    first, big = insert(1, 1), modify(2, 2, note="x" * 2_000)
    changes = [first, big, replayed(big, 3), replayed(first, 4)]
    write = folded_line(changes, max_document_bytes=1_000)
    assert sorted(c.batch_index for c, _ in write.poison) == [2, 3]
    _, body = written(write)
    assert body["version"] == 1
    assert write.folded is not None and write.folded.stale == [changes[3]]


# --- the aggregate writer's fold step -------------------------------------------------------------------


def planned(changes: list[Change], record: StoredRecord | None = None, max_actions: int = 4) -> Any:
    sink = AggregateSink(None, Settings(), max_actions=max_actions)
    call = _ApplyCall(sink, TAGS, None, AggregateResult())  # type: ignore[arg-type]  # plans only
    found = {} if record is None else {(item_pk("tags", "o-1"), generation_sk(1)): record}
    return call._plan(ItemChanges("o-1", changes), found)


def tagged(version: int, seq: int, tags: list[str], kind: ChangeKind = ChangeKind.MODIFY) -> Change:
    new = image(version, tags=tags, total=Decimal("2.50"))
    old = image(version - 1, tags=["a"], total=Decimal("2.50")) if kind is ChangeKind.MODIFY else None
    return Change(dict(KEY), kind, new, old, position(seq), batch_index=seq)


def test_aggregate_a_change_over_the_group_limit_is_poison_and_the_record_stays() -> None:
    stored = ATTRIBUTE.advance(None, insert(1, 1))
    assert stored is not None
    record = StoredRecord(stored, {"a": {"items": Decimal(1), "amount": Decimal("2.50")}}, "token-1")
    grow = tagged(2, 2, ["a", "b", "c", "d"])
    plan = planned([grow], record)
    assert [c for c, _ in plan.poison] == [grow] and "at most 3 groups per item" in plan.poison[0][1]
    assert plan.writes == [] and plan.applied == 0


def test_aggregate_a_projection_error_at_the_end_falls_back_to_the_change_before() -> None:
    first = tagged(1, 1, ["a"], kind=ChangeKind.INSERT)
    bad = Change(
        dict(KEY), ChangeKind.MODIFY, image(2, tags=["a"]), first.new_image, position(2), batch_index=2
    )
    plan = planned([first, bad])  # no total: Sum(attribute="total") fails
    assert [c for c, _ in plan.poison] == [bad] and "projection failed" in plan.poison[0][1]
    assert len(plan.writes) == 1 and plan.writes[0].contributions == {
        "a": {"items": Decimal(1), "amount": Decimal("2.50")}
    }
    assert plan.applied == 1


def test_aggregate_a_delete_that_cannot_be_written_is_a_rejected_delete() -> None:
    # With one action per transaction no group fits: a stored record's delete is refused (poison).
    stored = ATTRIBUTE.advance(None, insert(1, 1))
    assert stored is not None
    record = StoredRecord(stored, {"a": {"items": Decimal(1), "amount": Decimal("2.50")}}, "token-1")
    gone = Change(dict(KEY), ChangeKind.REMOVE, None, image(1, tags=["a"]), position(2), batch_index=2)
    plan = planned([gone], record, max_actions=1)
    assert [c for c, _ in plan.poison] == [gone] and plan.writes == [] and plan.applied == 0


def test_aggregate_replays_of_a_rejected_change_are_all_poison() -> None:
    stored = ATTRIBUTE.advance(None, insert(1, 1))
    assert stored is not None
    record = StoredRecord(stored, {"a": {"items": Decimal(1), "amount": Decimal("2.50")}}, "token-1")
    grow = tagged(2, 2, ["a", "b", "c", "d"])
    plan = planned([grow, replayed(grow, 3)], record)
    assert plan.writes == [] and plan.applied == 0
    assert grow in [c for c, _ in plan.poison]


def test_aggregate_a_rejected_last_change_leaves_the_state_before_it_not_the_stored_one() -> None:
    # Before issue 15 the item's whole batch was dropped (the valid v2 neither applied nor dead-lettered);
    # now the group limit is a rejection like any other: v3 is poison, v2 is written.
    stored = ATTRIBUTE.advance(None, insert(1, 1))
    assert stored is not None
    record = StoredRecord(stored, {"a": {"items": Decimal(1), "amount": Decimal("2.50")}}, "token-1")
    move, grow = tagged(2, 2, ["b"]), tagged(3, 3, ["a", "b", "c", "d"])
    plan = planned([move, grow], record)
    assert [c for c, _ in plan.poison] == [grow] and "at most 3 groups per item" in plan.poison[0][1]
    assert plan.applied == 1 and plan.last is move and len(plan.writes) == 1
    written_record = plan.writes[0]
    assert written_record.contributions == {"b": {"items": Decimal(1), "amount": Decimal("2.50")}}
    assert written_record.deltas == {
        "a": {"items": Decimal(-1), "amount": Decimal("-2.50")},
        "b": {"items": Decimal(1), "amount": Decimal("2.50")},
    }
    assert written_record.read_token == "token-1" and written_record.state.rev == 2
