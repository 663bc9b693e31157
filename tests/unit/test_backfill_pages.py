"""A page's path without servers: scan retries and stamps, the applier's sinks and dead letters, dry runs."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from projections.orders import customer_totals, orders
from projector.backfill.apply import PageApplier
from projector.backfill.dryrun import CollectingSink
from projector.changes.batch import ItemChanges, SinkResult
from projector.changes.types import ChangeKind
from projector.deadletters.store import FileDeadLetterStore
from projector.retry import Deadline, RetryPolicy
from projector.retry.transient import is_transient
from projector.source.scanner import Page, SegmentScanner

FAST = RetryPolicy(max_attempts=4, initial_wait_s=0.001, max_wait_s=0.002, jitter_s=0.0)


def raw_order(order_id: str, version: int = 1, status: str = "PAID", total: str = "12.50") -> dict[str, Any]:
    return {
        "order_id": {"S": order_id},
        "customer_id": {"S": "C1"},
        "status": {"S": status},
        "total": {"N": total},
        "currency": {"S": "EUR"},
        "created_at": {"S": "2026-01-02T10:00:00Z"},
        "version": {"N": str(version)},
        "blob": {"B": b"\x00\x01"},
    }


def throttled(code: str) -> ClientError:
    return ClientError(
        {"Error": {"Code": code, "Message": "slow down"}, "ResponseMetadata": {"HTTPStatusCode": 400}}, "Scan"
    )


class ScriptedClient:
    """Answers Scan with the given responses (an exception is raised), recording each request."""

    def __init__(self, answers: list[Any]) -> None:
        self.answers = answers
        self.requests: list[dict[str, Any]] = []

    def scan(self, **request: Any) -> dict[str, Any]:
        self.requests.append(request)
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer


@pytest.mark.parametrize(
    "code", ["ProvisionedThroughputExceededException", "ThrottlingException", "RequestLimitExceeded"]
)
def test_throttling_is_retried_and_the_page_is_stamped_when_the_winning_request_was_sent(code: str) -> None:
    client = ScriptedClient(
        [
            throttled(code),
            throttled(code),
            {"Items": [raw_order("a")], "LastEvaluatedKey": {"order_id": {"S": "a"}}},
            {"Items": [raw_order("b")]},
        ]
    )
    scanner = SegmentScanner(client, "orders", 4, 100, threading.Event(), policy=FAST)
    pages = list(scanner.pages(2))
    assert [len(page.items) for page in pages] == [1, 1]
    assert pages[0].next_key == {"order_id": {"S": "a"}} and pages[1].next_key is None
    assert client.requests[0] == {
        "TableName": "orders",
        "Segment": 2,
        "TotalSegments": 4,
        "ConsistentRead": True,
        "Limit": 100,
    }
    assert client.requests[3]["ExclusiveStartKey"] == {"order_id": {"S": "a"}}
    assert pages[0].read_at <= pages[1].read_at


def test_validation_errors_are_not_retried() -> None:
    invalid = ClientError(
        {
            "Error": {"Code": "ValidationException", "Message": "bad"},
            "ResponseMetadata": {"HTTPStatusCode": 400},
        },
        "Scan",
    )
    assert not is_transient(invalid)
    client = ScriptedClient([invalid])
    with pytest.raises(ClientError):
        list(SegmentScanner(client, "orders", 1, 10, threading.Event(), policy=FAST).pages(0))


class RecordingSink:
    def __init__(self, fail: set[str] = frozenset(), poison: set[str] = frozenset()) -> None:
        self.calls: list[list[ItemChanges]] = []
        self.fail, self.poison = fail, poison

    def apply(self, projection: Any, items: Sequence[ItemChanges], deadline: Deadline) -> SinkResult:
        self.calls.append(list(items))
        result = SinkResult()
        for entry in items:
            if entry.item_id in self.fail:
                result.failed[entry.item_id] = "boom"
            elif entry.item_id in self.poison:
                result.poison.append((entry.changes[0], "bad item"))
            else:
                result.applied += 1
        return result


def test_a_page_becomes_stamped_upserts_for_every_projection(tmp_path: Path) -> None:
    sink = RecordingSink()
    applier = PageApplier(
        [orders, customer_totals],
        {"orders": sink, "customer_totals": sink},
        ("order_id",),
        1000.0,
        FileDeadLetterStore(tmp_path),
    )
    outcome = applier.apply(Page(0, [raw_order("a"), raw_order("b", 3)], None, read_at=1005.0))
    assert outcome.ok and outcome.items == 2
    assert {name: tally.written for name, tally in outcome.per_projection.items()} == {
        "orders": 2,
        "customer_totals": 2,
    }
    change = sink.calls[0][1].changes[0]
    assert change.kind is ChangeKind.INSERT and change.position is None
    assert (change.backfill.scan_started_at, change.backfill.read_at) == (1000.0, 1005.0)
    assert change.new_image["version"] == Decimal(3) and change.keys == {"order_id": "b"}


def test_failed_items_block_the_page_and_poison_goes_whole_to_the_dead_letters(tmp_path: Path) -> None:
    store = FileDeadLetterStore(tmp_path)
    applier = PageApplier(
        [orders], {"orders": RecordingSink(fail={"a"}, poison={"b"})}, ("order_id",), 1.0, store
    )
    outcome = applier.apply(Page(0, [raw_order("a"), raw_order("b"), raw_order("c")], None, read_at=2.0))
    assert not outcome.ok and outcome.failures == {"orders:a": "boom"}
    tally = outcome.per_projection["orders"]
    assert (tally.written, tally.failed, tally.poison) == (1, 1, 1)
    [letter] = list(store.list())
    assert letter.reason == "poison" and letter.projection == "orders" and letter.error == "bad item"
    assert letter.record["order_id"] == {"S": "b"} and letter.record["blob"] == {"B": "AAE="}


def test_a_dry_run_counts_what_would_be_written_and_finds_poison() -> None:
    sink = CollectingSink()
    items = [raw_order("a"), raw_order("b", status="CANCELLED"), {**raw_order("c"), "total": {"S": "oops"}}]
    applier = PageApplier(
        [orders, customer_totals],
        {"orders": sink, "customer_totals": sink},
        ("order_id",),
        1.0,
        FileDeadLetterStore(Path("/nonexistent-never-written")),
    )
    outcome = applier.apply(Page(0, items[:2], None, read_at=2.0))
    assert outcome.ok
    assert sink.would_write["orders"].to_json(orders) == {"documents": 2, "hidden": 0}
    assert sink.would_write["customer_totals"].to_json(customer_totals) == {
        "items_contributing": 1,
        "groups": 1,
    }
    poison = sink.apply(
        customer_totals,
        [ItemChanges("c", applier._changes(Page(0, items[2:], None, 2.0), outcome))],
        Deadline.never(),
    )
    assert len(poison.poison) == 1
