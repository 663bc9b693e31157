"""Issue 14, cases 1 and 5: tombstones and kept (TTL-expired) documents survive rebuilds and rollbacks.

Every test feeds the real stream through the pipeline, rebuilds with ``backfill --rebuild``, then
replays old records (a redrive, a resent batch) and checks the end state against the source table.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest

from devservers.workload import seed_orders
from projections.orders import orders
from projector.backfill import Rebuilds
from projector.config.settings import Settings
from projector.retry import Deadline
from projector.runner import to_lambda_record
from projector.runtime import Runtime
from projector.sinks.opensearch import indexes
from projector.sinks.opensearch.writer import OpenSearchSink
from tests.integration import test_opensearch_sink as at_sink
from tests.integration.test_backfill import assert_matches_truth, backfill, ready_runtime, verify
from tests.support.truth import visible_documents

pytestmark = pytest.mark.integration

TTL_IDENTITY = {"type": "Service", "principalId": "dynamodb.amazonaws.com"}


class Stream:
    """Every record of the table's stream so far (from TRIM_HORIZON), Lambda-shaped, and a cursor."""

    def __init__(self, runtime: Runtime, dynamodb: Any, streams: Any) -> None:
        self.runtime, self.streams = runtime, streams
        self.arn = dynamodb.describe_table(TableName=runtime.settings.source_table)["Table"][
            "LatestStreamArn"
        ]
        [shard] = streams.describe_stream(StreamArn=self.arn)["StreamDescription"]["Shards"]
        self.iterator = streams.get_shard_iterator(
            StreamArn=self.arn, ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON"
        )["ShardIterator"]
        self.records: list[dict[str, Any]] = []
        self.applied = 0

    def read(self) -> list[dict[str, Any]]:
        while True:
            page = self.streams.get_records(ShardIterator=self.iterator, Limit=1000)
            self.iterator = page["NextShardIterator"]
            region = self.streams.meta.region_name
            self.records += [to_lambda_record(raw, self.arn, region) for raw in page["Records"]]
            if not page["Records"]:
                return self.records

    def apply_new(self, ttl: frozenset[str] = frozenset()) -> None:
        """Apply the records not applied yet; REMOVEs of the ``ttl`` ids as TTL deletes."""
        fresh = self.read()[self.applied :]
        for record in fresh:
            if record["eventName"] == "REMOVE" and order_id(record) in ttl:
                record["userIdentity"] = TTL_IDENTITY
        self.applied += len(fresh)
        replay(self.runtime, fresh)

    def of(self, ids: set[str], removes: bool = False) -> list[dict[str, Any]]:
        """Copies of the records of ``ids`` (without their REMOVEs unless asked): what a redrive resends."""
        return [
            copy.deepcopy(record)
            for record in self.records
            if order_id(record) in ids and (removes or record["eventName"] != "REMOVE")
        ]


def order_id(record: dict[str, Any]) -> str:
    return record["dynamodb"]["Keys"]["order_id"]["S"]


def replay(runtime: Runtime, records: list[dict[str, Any]]) -> None:
    for start in range(0, len(records), 100):
        outcome = runtime.stream_applier.apply(records[start : start + 100], Deadline.never())
        assert outcome.first_failed is None, outcome.failures


def pay(dynamodb: Any, table: str, order_id: str) -> None:
    """A MODIFY that makes the order count in every aggregate (PAID, version + 1)."""
    dynamodb.update_item(
        TableName=table,
        Key={"order_id": {"S": order_id}},
        UpdateExpression="SET #s = :paid, #v = #v + :one",
        ExpressionAttributeNames={"#s": "status", "#v": "version"},
        ExpressionAttributeValues={":paid": {"S": "PAID"}, ":one": {"N": "1"}},
    )


def pay_and_delete(dynamodb: Any, table: str, ids: list[str]) -> None:
    for order in ids:
        pay(dynamodb, table, order)
        dynamodb.delete_item(TableName=table, Key={"order_id": {"S": order}})


def assert_exact(runtime: Runtime, dynamodb: Any, opensearch: Any) -> None:
    assert_matches_truth(runtime, dynamodb, opensearch)
    report = verify(runtime, settle_s=0.2)
    assert report.drift == 0, report.to_json()


@pytest.fixture
def runtime(settings_env: Any, opensearch: Any, dynamodb: Any) -> Runtime:
    return ready_runtime()


def test_a_deleted_order_never_comes_back_after_rebuilds_and_a_redrive(
    runtime: Runtime, dynamodb: Any, dynamodbstreams: Any, opensearch: Any
) -> None:
    table = runtime.settings.source_table
    ids = [order["order_id"] for order in seed_orders(dynamodb, table, 12, customers=3)]
    stream = Stream(runtime, dynamodb, dynamodbstreams)
    stream.apply_new()
    deleted = {ids[0], ids[1]}
    pay_and_delete(dynamodb, table, sorted(deleted))
    stream.apply_new()
    stream.read()
    late = stream.of(deleted)  # INSERT and MODIFY of the deleted orders, resent later

    assert backfill(runtime, segments=2, rebuild=True).status == "finished"
    replay(runtime, late)
    alias = runtime.settings.index_prefix + "orders"
    assert not deleted & set(visible_documents(opensearch, alias))  # search: back after one rebuild today
    assert backfill(runtime, segments=2, rebuild=True).status == "finished"
    replay(runtime, late)  # aggregates: counted again after two rebuilds today
    assert not deleted & set(visible_documents(opensearch, alias))
    assert_exact(runtime, dynamodb, opensearch)


def test_a_deleted_order_is_never_counted_again_after_two_aggregate_rebuilds(
    runtime: Runtime, dynamodb: Any, dynamodbstreams: Any
) -> None:
    table = runtime.settings.source_table
    ids = [order["order_id"] for order in seed_orders(dynamodb, table, 6, customers=2, seed=9)]
    stream = Stream(runtime, dynamodb, dynamodbstreams)
    stream.apply_new()
    pay_and_delete(dynamodb, table, [ids[0]])
    stream.apply_new()
    stream.read()
    late = stream.of({ids[0]})
    aggregates = ("customer_totals", "daily_sales")
    for _ in range(2):
        assert backfill(runtime, segments=2, rebuild=True, projections=aggregates).status == "finished"
    replay(runtime, late)
    report = verify(runtime, settle_s=0.2, projections=aggregates)
    assert report.drift == 0, report.to_json()


def test_rebuilds_rollbacks_and_replays_interleaved_end_on_the_source(
    runtime: Runtime, dynamodb: Any, dynamodbstreams: Any, opensearch: Any
) -> None:
    table = runtime.settings.source_table
    ids = [order["order_id"] for order in seed_orders(dynamodb, table, 16, customers=3, seed=3)]
    stream = Stream(runtime, dynamodb, dynamodbstreams)
    stream.apply_new()
    rebuilds = Rebuilds(runtime)
    projections = list(runtime.registry.all)

    pay_and_delete(dynamodb, table, ids[0:2])
    stream.apply_new()
    assert backfill(runtime, segments=2, rebuild=True).status == "finished"  # build 2
    pay_and_delete(dynamodb, table, ids[2:4])
    stream.apply_new()
    assert backfill(runtime, segments=2, rebuild=True).status == "finished"  # build 3
    pay(dynamodb, table, ids[5])
    stream.apply_new()
    for projection in projections:  # back to build 2, kept exact by live writes
        rebuilds.rollback(projection)
    pay_and_delete(dynamodb, table, ids[4:6])
    stream.apply_new()
    replay(runtime, stream.of(set(ids[0:6])))
    assert_exact(runtime, dynamodb, opensearch)

    # a rebuild that begins from the rolled-back build, rolled back mid-way, then done again
    for projection in projections:
        rebuilds.begin(projection)
    pay_and_delete(dynamodb, table, ids[6:7])
    stream.apply_new()
    for projection in projections:
        rebuilds.rollback(projection)
    assert backfill(runtime, segments=2, rebuild=True).status == "finished"
    stream.read()
    replay(runtime, stream.of(set(ids[0:7])))  # every old change of every deleted order, again
    replay(runtime, stream.of(set(ids), removes=True))  # and the whole history once more, in order
    assert_exact(runtime, dynamodb, opensearch)


def test_a_late_change_reaching_a_new_index_before_its_tombstone_copy_stays_stale(
    settings_env: Any, opensearch: Any
) -> None:
    """The writer folds an index with no document from another write target's tombstone (the window
    between a rebuild's begin and its copy, or a tombstone written by a batch that began before it)."""
    prefix = settings_env.index_prefix
    indexes.ensure(opensearch, orders, prefix)
    sink = OpenSearchSink(opensearch, Settings(index_prefix=prefix), retry_policy=at_sink.FAST)
    stream = at_sink.Stream()
    v1, v2 = at_sink.order("o-1", 1), at_sink.order("o-1", 2, "PAID")
    created, paid, gone = (
        at_sink.insert(v1, stream.next()),
        at_sink.modify(v1, v2, stream.next()),
        at_sink.remove(v2, stream.next()),
    )
    assert at_sink.apply(sink, [created, paid, gone]).applied == 3
    new = indexes.begin_rebuild(opensearch, orders, prefix)  # no carry-over: the new index is empty
    late = at_sink.apply(sink, [paid])
    assert (late.applied, late.stale, late.failed) == (0, 1, {})
    assert at_sink.stored(opensearch, new, ["o-1"]) == {}
    again = at_sink.order("o-1", 1, "PENDING")
    reborn = at_sink.apply(sink, [at_sink.insert(again, stream.next(10))])
    assert reborn.applied == 1
    old_state = at_sink.stored(opensearch, f"{prefix}orders", ["o-1"])["o-1"]
    new_state = at_sink.stored(opensearch, new, ["o-1"])["o-1"]
    assert new_state == old_state and old_state[1]["_projector"]["life"] == 1  # the same new life in both


@pytest.fixture
def kept_runtime(
    settings_env: Any, opensearch: Any, dynamodb: Any, monkeypatch: pytest.MonkeyPatch
) -> Runtime:
    monkeypatch.setenv("PROJECTOR_PROJECTIONS", "tests.integration.exactness_kept")
    return ready_runtime()


def test_kept_expired_documents_survive_verify_repair_and_rebuilds(
    kept_runtime: Runtime, dynamodb: Any, dynamodbstreams: Any, opensearch: Any
) -> None:
    runtime = kept_runtime
    table = runtime.settings.source_table
    alias = runtime.settings.index_prefix + "kept_orders"
    ids = [order["order_id"] for order in seed_orders(dynamodb, table, 8, customers=3, seed=5)]
    stream = Stream(runtime, dynamodb, dynamodbstreams)
    stream.apply_new()
    expired, deleted = ids[0], ids[1]
    for order in (expired, deleted):
        dynamodb.delete_item(TableName=table, Key={"order_id": {"S": order}})
    stream.apply_new(ttl=frozenset({expired}))
    assert set(visible_documents(opensearch, alias)) == set(ids) - {deleted}

    report = verify(runtime, settle_s=0.2, repair=True)
    verdict = report.to_json()["projections"]["kept_orders"]
    assert verdict["drift"] == 0 and verdict["kept"] == 1, report.to_json()
    assert report.drift == 0
    assert set(visible_documents(opensearch, alias)) == set(ids) - {deleted}

    projection = runtime.registry.document("kept_orders")
    before = indexes.read_index(opensearch, projection, runtime.settings.index_prefix)
    for _ in range(2):
        assert backfill(runtime, segments=2, rebuild=True).status == "finished"
        replay(runtime, stream.of({deleted}))
    assert indexes.read_index(opensearch, projection, runtime.settings.index_prefix) != before
    assert set(visible_documents(opensearch, alias)) == set(ids) - {deleted}
    again = verify(runtime, settle_s=0.2)
    assert again.drift == 0 and again.to_json()["projections"]["kept_orders"]["kept"] == 1, again.to_json()
