"""The one apply path without servers: in-memory stores and dead-letter stores, stream batches and pages.

Each test feeds Lambda-shaped records (or a scanned page) through ``StreamApplier`` / ``PageApplier``
into ``apply_changes`` and checks what each store received, what the dead-letter store holds and what
Lambda (or the backfill checkpoint) is told: nothing applied out of order per item, nothing lost.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator, Sequence
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from projections.orders import customer_totals, orders
from projector.backfill.apply import PageApplier
from projector.changes.batch import ItemChanges, SinkResult
from projector.deadletters.store import DeadLetterStore, FileDeadLetterStore
from projector.deadletters.types import DeadLetter
from projector.pipeline import BatchOutcome, DeadLetterRule, StreamApplier, UnnamedFailureError
from projector.projection.base import Projection
from projector.redrive import redrive
from projector.retry import Deadline
from projector.source.scanner import Page

pytestmark = pytest.mark.unit

ARN = "arn:aws:dynamodb:eu-west-1:123456789012:table/orders/stream/2026-01-01T00:00:00.000"


# fakes -----------------------------------------------------------------------------------------------
class MemoryStore:
    """Keeps, per projection and item, the versions it applied in the order it got them.

    ``fail`` items are not written (a store outage); changes with a ``poison`` (item, version) are
    rejected as poison, the rest of that item still applies.
    """

    def __init__(self, fail: set[str] | None = None, poison: set[tuple[str, int]] | None = None) -> None:
        self.fail = fail or set()
        self.poison = poison or set()
        self.applied: dict[tuple[str, str], list[int]] = {}
        self.calls: list[tuple[str, list[str]]] = []

    def apply(self, projection: Any, items: Sequence[ItemChanges], deadline: Deadline) -> SinkResult:
        self.calls.append((projection.name, [item.item_id for item in items]))
        result = SinkResult(requests=1)
        for item in items:
            if item.item_id in self.fail:
                result.failed[item.item_id] = "store unavailable"
                continue
            for change in item.changes:
                version = int(change.image["version"]) if change.image else -1
                if (item.item_id, version) in self.poison:
                    result.poison.append((change, f"rejected version {version}"))
                    continue
                self.applied.setdefault((projection.name, item.item_id), []).append(version)
                result.applied += 1
        return result


class MemoryDeadLetters(DeadLetterStore):
    """Letters in a list; with ``broken`` every put raises, as an unreachable bucket would."""

    def __init__(self, broken: bool = False) -> None:
        super().__init__()
        self.letters: list[DeadLetter] = []
        self.broken = broken

    def put(self, letter: DeadLetter) -> str:
        if self.broken:
            raise ConnectionError("dead-letter bucket unreachable")
        self.letters.append(letter)
        return f"memory://{letter.id}"

    def list(self, include_redriven: bool = False) -> Iterator[DeadLetter]:
        return iter(list(self.letters))

    def mark_redriven(self, letter: DeadLetter) -> None:
        self.letters.remove(letter)


# records ---------------------------------------------------------------------------------------------
def record(sequence: int, order_id: str, version: int, event: str = "MODIFY") -> dict[str, Any]:
    image = {
        "order_id": {"S": order_id},
        "customer_id": {"S": "C1"},
        "status": {"S": "PAID"},
        "total": {"N": "10.5"},
        "currency": {"S": "EUR"},
        "created_at": {"S": "2026-01-02T10:00:00Z"},
        "version": {"N": str(version)},
    }
    data: dict[str, Any] = {
        "ApproximateCreationDateTime": 1_767_000_000 + sequence,
        "Keys": {"order_id": {"S": order_id}},
        "SequenceNumber": f"{1000 + sequence:021d}",
        "SizeBytes": 100,
        "StreamViewType": "NEW_AND_OLD_IMAGES",
    }
    if event != "REMOVE":
        data["NewImage"] = image
    if event != "INSERT":
        data["OldImage"] = {**image, "version": {"N": str(version - 1)}}
    return {
        "eventID": f"e{sequence}",
        "eventName": event,
        "eventVersion": "1.1",
        "eventSource": "aws:dynamodb",
        "awsRegion": "eu-west-1",
        "dynamodb": data,
        "eventSourceARN": ARN,
    }


def sequence_of(raw: dict[str, Any]) -> str:
    return str(raw["dynamodb"]["SequenceNumber"])


def malformed(sequence: int | None) -> dict[str, Any]:
    """A record whose NewImage holds a number DynamoDB would never send."""
    raw = record(sequence or 0, "m", 1)
    raw["dynamodb"]["NewImage"]["total"] = {"N": "not a number"}
    if sequence is None:
        del raw["dynamodb"]["SequenceNumber"]
    return raw


def applier(
    stores: dict[str, MemoryStore], letters: DeadLetterStore, projections: Sequence[Projection] | None = None
) -> StreamApplier:
    chosen = projections if projections is not None else (orders, customer_totals)
    return StreamApplier(chosen, lambda projection: stores[projection.name], letters, parallel=False)


def both(**options: Any) -> dict[str, MemoryStore]:
    return {"orders": MemoryStore(**options), "customer_totals": MemoryStore(**options)}


# the stream path -------------------------------------------------------------------------------------
def test_changes_reach_every_projection_grouped_per_item_in_stream_order() -> None:
    stores = both()
    batch = [record(1, "a", 1), record(2, "b", 1), record(3, "a", 2), record(4, "b", 2), record(5, "a", 3)]
    outcome = applier(stores, MemoryDeadLetters()).apply(batch, Deadline.never())
    for name, store in stores.items():
        assert store.calls == [(name, ["a", "b"])]  # one call per projection, items by first appearance
        assert store.applied == {(name, "a"): [1, 2, 3], (name, "b"): [1, 2]}
    assert outcome.response() == {"batchItemFailures": []} and outcome.ok
    assert (outcome.records, outcome.applied, outcome.dead_lettered) == (5, 5, 0)
    assert {name: tally.written for name, tally in outcome.per_projection.items()} == {
        "orders": 5,
        "customer_totals": 5,
    }
    assert (outcome.first_sequence, outcome.last_sequence) == (sequence_of(batch[0]), sequence_of(batch[-1]))


def test_a_failed_item_marks_its_earliest_record_and_lambda_resends_from_there() -> None:
    stores = both(fail={"b"})
    batch = [record(1, "a", 1), record(2, "b", 1), record(3, "a", 2), record(4, "b", 2)]
    outcome = applier(stores, MemoryDeadLetters()).apply(batch, Deadline.never())
    assert outcome.first_failed == 1
    assert outcome.response() == {"batchItemFailures": [{"itemIdentifier": sequence_of(batch[1])}]}
    assert outcome.failures == {"orders:b": "store unavailable", "customer_totals:b": "store unavailable"}
    assert outcome.applied == 2 and not outcome.ok
    assert stores["orders"].applied == {("orders", "a"): [1, 2]}
    assert outcome.per_projection["orders"].failed == 1


def test_poison_goes_whole_to_the_dead_letter_store_and_the_rest_applies() -> None:
    stores = {"orders": MemoryStore(poison={("a", 2)})}
    letters = MemoryDeadLetters()
    batch = [record(1, "a", 1), record(2, "a", 2), record(3, "a", 3), record(4, "b", 1)]
    kept = copy.deepcopy(batch[1])
    outcome = applier(stores, letters, [orders]).apply(batch, Deadline.never())
    assert outcome.response() == {"batchItemFailures": []}
    assert outcome.dead_lettered == 1 and outcome.per_projection["orders"].poison == 1
    [letter] = letters.letters
    assert letter.reason == "poison" and letter.projection == "orders"
    assert letter.error == "rejected version 2"
    assert letter.record == kept  # the whole record as Lambda delivered it
    assert (letter.sequence_number, letter.event_source_arn) == (sequence_of(kept), ARN)
    assert stores["orders"].applied == {("orders", "a"): [1, 3], ("orders", "b"): [1]}


def test_when_the_dead_letter_store_fails_the_record_is_reported_failed_and_the_others_still_apply() -> None:
    stores = {"orders": MemoryStore(poison={("a", 2)})}
    letters = MemoryDeadLetters(broken=True)
    batch = [record(1, "b", 1), record(2, "a", 2), record(3, "c", 1)]
    outcome = applier(stores, letters, [orders]).apply(batch, Deadline.never())
    # the poison record is safe nowhere: Lambda must resend it (and what follows it)
    assert outcome.response() == {"batchItemFailures": [{"itemIdentifier": sequence_of(batch[1])}]}
    assert outcome.first_failed == 1 and outcome.dead_lettered == 0 and not letters.letters
    assert outcome.failures["orders:a"].startswith("dead-letter store failed: ConnectionError")
    assert outcome.per_projection["orders"].poison == 0
    assert stores["orders"].applied == {("orders", "b"): [1], ("orders", "c"): [1]}
    assert outcome.applied == 2


def test_a_malformed_record_is_dead_lettered_whole_and_never_stops_the_batch() -> None:
    stores = {"orders": MemoryStore()}
    letters = MemoryDeadLetters()
    bad = malformed(2)
    batch = [record(1, "a", 1), copy.deepcopy(bad), record(3, "a", 2)]
    outcome = applier(stores, letters, [orders]).apply(batch, Deadline.never())
    assert outcome.response() == {"batchItemFailures": []} and outcome.dead_lettered == 1
    [letter] = letters.letters
    assert letter.reason == "malformed" and letter.projection is None and "total" in letter.error
    assert letter.record == bad and letter.sequence_number == sequence_of(bad)
    assert stores["orders"].applied == {("orders", "a"): [1, 2]}


def test_a_malformed_record_the_store_cannot_keep_fails_the_batch_if_lambda_cannot_be_told_which() -> None:
    stores = {"orders": MemoryStore()}
    broken = MemoryDeadLetters(broken=True)
    named = applier(stores, broken, [orders]).apply([record(1, "a", 1), malformed(2)], Deadline.never())
    assert named.response() == {"batchItemFailures": [{"itemIdentifier": f"{1002:021d}"}]}
    unnamed = applier(stores, broken, [orders]).apply([record(1, "a", 1), malformed(None)], Deadline.never())
    assert unnamed.first_failed == 1 and unnamed.first_failed_sequence is None
    with pytest.raises(UnnamedFailureError):  # a raised error: Lambda resends the whole batch
        unnamed.response()


def test_several_projections_one_failing_holds_only_the_failed_items_records() -> None:
    stores = {"orders": MemoryStore(fail={"a"}), "customer_totals": MemoryStore()}
    batch = [record(1, "b", 1), record(2, "a", 1), record(3, "b", 2), record(4, "a", 2)]
    outcome = applier(stores, MemoryDeadLetters()).apply(batch, Deadline.never())
    assert outcome.first_failed == 1 and outcome.failures == {"orders:a": "store unavailable"}
    assert stores["customer_totals"].applied == {
        ("customer_totals", "b"): [1, 2],
        ("customer_totals", "a"): [1, 2],
    }
    assert stores["orders"].applied == {("orders", "b"): [1, 2]}
    assert outcome.applied == 2  # only b's records reached every projection
    assert (outcome.per_projection["orders"].failed, outcome.per_projection["customer_totals"].failed) == (
        1,
        0,
    )


def test_the_earliest_failure_over_all_projections_is_what_lambda_gets() -> None:
    stores = {"orders": MemoryStore(fail={"b"}), "customer_totals": MemoryStore(fail={"a"})}
    batch = [record(1, "c", 1), record(2, "a", 1), record(3, "b", 1)]
    outcome = applier(stores, MemoryDeadLetters()).apply(batch, Deadline.never())
    assert outcome.response() == {"batchItemFailures": [{"itemIdentifier": sequence_of(batch[1])}]}
    assert set(outcome.failures) == {"orders:b", "customer_totals:a"} and outcome.applied == 1


def test_only_the_named_projections_are_applied() -> None:
    stores = both()
    outcome = applier(stores, MemoryDeadLetters()).apply(
        [record(1, "a", 1)], Deadline.never(), only=["orders"]
    )
    assert outcome.ok and stores["customer_totals"].calls == [] and set(outcome.per_projection) == {"orders"}


# redrives ----------------------------------------------------------------------------------------------
def test_in_a_redrive_poison_and_malformed_records_are_failures_not_new_letters() -> None:
    stores = {"orders": MemoryStore(poison={("a", 2)})}
    letters = MemoryDeadLetters()
    for raw in (record(2, "a", 2), malformed(5)):
        outcome = applier(stores, letters, [orders]).apply([raw], Deadline.never(), redrive=True)
        assert outcome.first_failed == 0 and outcome.dead_lettered == 0 and not outcome.ok
    assert letters.letters == []


def test_a_redrive_moves_a_letter_only_once_it_applies(tmp_path: Path) -> None:
    letters = FileDeadLetterStore(tmp_path)
    store = MemoryStore(poison={("a", 2)})
    engine: Any = SimpleNamespace(  # the two parts of a Runtime a redrive reads
        dead_letters=letters, stream_applier=applier({"orders": store}, letters, [orders])
    )
    first = engine.stream_applier.apply([record(1, "a", 2)], Deadline.never())
    assert first.dead_lettered == 1
    [still] = list(redrive(engine))  # still poison: reported, not stored again, left pending
    assert not still.redriven and "rejected version 2" in str(still.error)
    assert len(list(letters.list())) == 1 and list(letters.list(include_redriven=True)) == list(
        letters.list()
    )
    store.poison.clear()  # the fix is deployed
    [done] = list(redrive(engine))
    assert done.redriven and list(letters.list()) == [] and store.applied == {("orders", "a"): [2]}


# backfill pages -----------------------------------------------------------------------------------------
def scanned(order_id: str, version: int) -> dict[str, Any]:
    return {"order_id": {"S": order_id}, "customer_id": {"S": "C1"}, "status": {"S": "PAID"},
            "total": {"N": "3"}, "currency": {"S": "EUR"}, "created_at": {"S": "2026-01-02T10:00:00Z"},
            "version": {"N": str(version)}, "blob": {"B": b"\x00\x01"}}  # fmt: skip


def test_a_page_uses_the_same_rule_poison_kept_as_json_and_a_failed_store_blocks_the_checkpoint() -> None:
    page = Page(0, [scanned("a", 1), scanned("b", 2), scanned("c", 1)], None, read_at=2.0)
    letters = MemoryDeadLetters()
    store = MemoryStore(poison={("b", 2)})
    outcome = PageApplier([orders], {"orders": store}, ("order_id",), 1.0, letters).apply(page)
    assert isinstance(outcome, BatchOutcome) and outcome.ok and outcome.items == 3
    [letter] = letters.letters
    assert letter.record["blob"] == {"B": "AAE="} and letter.sequence_number is None
    assert letter.event_source_arn is None and letter.projection == "orders"
    broken = PageApplier([orders], {"orders": MemoryStore(poison={("b", 2)})}, ("order_id",), 1.0,
                         MemoryDeadLetters(broken=True)).apply(page)  # fmt: skip
    assert (
        not broken.ok
        and broken.first_failed == 1
        and "dead-letter store failed" in broken.failures["orders:b"]
    )


def test_the_rule_alone_answers_why_a_record_is_not_safe() -> None:
    letter = DeadLetterRule(None).letter({"x": 1}, "poison", "bad")
    assert DeadLetterRule.redrive().keep(letter) == "bad"
    assert DeadLetterRule(MemoryDeadLetters()).keep(letter) is None
    assert "ConnectionError" in str(DeadLetterRule(MemoryDeadLetters(broken=True)).keep(letter))
