"""``handler_vs_bulk`` and ``handler_vs_per_record``: the document path end to end on the real OpenSearch.

Subject: ``projector.handler.lambda_handler`` with a projections module holding only ``orders``, fed the
workload in Lambda-shaped batches (stdout, where Powertools logs and metrics go, is discarded).
Baselines, each into its own index with the same mappings and settings:

- ``helpers.bulk`` of the final documents (one per live order, what the stream ends as);
- one request per record, the AWS tutorial's handler: ``index`` the NewImage (deserialised with boto3's
  ``TypeDeserializer``) or ``delete`` on REMOVE.

Every round starts from empty indexes; the runs alternate; nothing is refreshed inside a timed span.
"""

from __future__ import annotations

import statistics
import time
from typing import TYPE_CHECKING, Any

from bench.env import DOCUMENTS_MODULE, drop_indexes, opensearch_client
from bench.harness import Goal, Samples, alternate, compare, log, quiet_stdout, timed

if TYPE_CHECKING:
    from bench.cases import Context

BULK_GOAL = Goal(">=", 0.8)
BULK_REPEATS = 3
PER_RECORD_GOAL = Goal(">=", 30.0)


class LambdaContext:
    """The part of Lambda's context the handler reads: a generous deadline."""

    def __init__(self, seconds: float = 900) -> None:
        self.end = time.monotonic() + seconds

    def get_remaining_time_in_millis(self) -> int:
        return int((self.end - time.monotonic()) * 1000)


class Indexes:
    """The handler's index (template + aliases via ``indexes.ensure``) and the baselines' plain indexes."""

    def __init__(self, ctx: Context) -> None:
        from projections.orders import orders
        from projector.sinks.opensearch import indexes

        self.client = opensearch_client()
        self.prefix = ctx.env.index_prefix
        self.projection = orders
        self.indexes = indexes
        self.alias = f"{self.prefix}{orders.name}"
        self.template = indexes.template_body(orders, self.prefix)["template"]

    def fresh_handler_index(self) -> str:
        drop_indexes(self.client, f"{self.alias}-g*")
        return self._ready(self.indexes.ensure(self.client, self.projection, self.prefix))

    def fresh_baseline_index(self, name: str) -> str:
        index = f"{self.prefix}baseline-{name}"
        drop_indexes(self.client, index)
        self.client.indices.create(index=index, body=self.template)
        return self._ready(index)

    def _ready(self, index: str) -> str:
        """Wait for the primary shard, so no timed run pays for its allocation."""
        self.client.cluster.health(index=index, wait_for_status="yellow", request_timeout=60)
        return index

    def visible(self, index: str) -> int:
        self.client.indices.refresh(index=index)
        return int(self.client.count(index=index)["count"])

    def mismatches(self, index: str, live: dict[str, dict[str, Any]]) -> int:
        """Documents readable through ``index`` that differ from the final items (or are missing, or extra)."""
        from opensearchpy import helpers

        from projections.orders import order_document

        self.client.indices.refresh(index=index)
        found = {
            hit["_id"]: _plain(hit["_source"]) for hit in helpers.scan(self.client, index=index, size=2000)
        }
        expected = {order_id: _plain(order_document(item)) for order_id, item in live.items()}
        differing: int = sum(found[k] != expected[k] for k in found.keys() & expected.keys())
        return len(found.keys() ^ expected.keys()) + differing


def _plain(value: Any) -> Any:
    """A document with numbers as Decimals and projector's meta field left out, for comparisons."""
    from decimal import Decimal

    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items() if k != "_projector"}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    return Decimal(str(value))


def _handle_all(batches: list[list[dict[str, Any]]]) -> int:
    """Every batch through the real handler; answers how many batches reported a failure."""
    from projector.handler import lambda_handler

    failures = 0
    with quiet_stdout():
        for batch in batches:
            response = lambda_handler({"Records": batch}, LambdaContext())
            failures += bool(response["batchItemFailures"])
    return failures


def _warm_handler(ctx: Context, places: Indexes, batch: list[dict[str, Any]]) -> None:
    """Build the engine (imports, settings, clients, connections) outside the timed runs."""
    ctx.env.use(DOCUMENTS_MODULE)
    places.fresh_handler_index()
    _handle_all([batch])


def handler_vs_bulk(ctx: Context) -> dict[str, Any]:
    from opensearchpy import helpers

    from projections.orders import order_document

    sizes = ctx.sizes
    workload = ctx.workload(sizes.stream_records)
    batches = workload.batches(sizes.batch_size)
    live = workload.live
    places = Indexes(ctx)
    _warm_handler(ctx, places, batches[0])
    handler = Samples("projector handler", "records/s")
    bulk = Samples("helpers.bulk of final documents", "records/s")
    checks: dict[str, Any] = {"handler_failed_batches": 0, "documents_expected": len(live)}

    def run_handler(_: int) -> None:
        places.fresh_handler_index()
        seconds, failures = timed(lambda: _handle_all(batches))
        handler.add(len(workload.records) / seconds)
        checks["handler_failed_batches"] += failures
        checks["handler_documents"] = places.visible(places.alias)
        checks["handler_mismatches"] = places.mismatches(places.alias, live)
        log(f"  handler: {len(workload.records)} records in {seconds:.2f} s")

    def run_bulk(_: int) -> None:
        # The baseline takes well under a second: its median of BULK_REPEATS fresh loads is one sample.
        times = []
        for _ in range(BULK_REPEATS):
            index = places.fresh_baseline_index("bulk")
            actions = [
                {"_index": index, "_id": order_id, "_source": order_document(item)}
                for order_id, item in live.items()
            ]
            seconds, (written, errors) = timed(
                lambda actions=actions: helpers.bulk(places.client, actions, stats_only=True)  # type: ignore[misc]  # a default binds this round's list
            )
            times.append(seconds)
        seconds = statistics.median(times)
        bulk.add(len(workload.records) / seconds)
        checks["bulk_documents"] = places.visible(index)
        checks["bulk_mismatches"] = places.mismatches(index, live)
        checks["bulk_errors"] = errors
        log(
            f"  bulk: {written} final documents ({len(workload.records)} records) in {seconds:.2f} s "
            f"(median of {BULK_REPEATS})"
        )

    alternate(sizes.handler_rounds, {"handler": run_handler, "bulk": run_bulk})
    # Every item touched in a batch is written once for that batch (a fresh index: nothing is unchanged).
    writes = sum(len({record["dynamodb"]["Keys"]["order_id"]["S"] for record in batch}) for batch in batches)
    return compare(
        handler,
        bulk,
        BULK_GOAL,
        records=len(workload.records),
        batches=len(batches),
        batch_size=sizes.batch_size,
        final_documents=len(live),
        handler_document_writes=writes,
        ratio_ceiling_at_equal_cost_per_write=round(len(live) / writes, 4),
        checks=checks,
        note="baseline throughput counts the records its final documents stand for; the handler "
        "must write each item once per batch it appears in",
    )


def _per_record(client: Any, index: str, records: list[dict[str, Any]]) -> int:
    """The AWS tutorial's handler: one request per record."""
    from boto3.dynamodb.types import TypeDeserializer

    from projections.orders import order_document

    deserialize = TypeDeserializer().deserialize
    requests = 0
    for record in records:
        data = record["dynamodb"]
        doc_id = deserialize(data["Keys"]["order_id"])
        if record["eventName"] == "REMOVE":
            client.delete(index=index, id=doc_id, params={"ignore": 404})
        else:
            item = {name: deserialize(value) for name, value in data["NewImage"].items()}
            client.index(index=index, id=doc_id, body=order_document(item))
        requests += 1
    return requests


def handler_vs_per_record(ctx: Context) -> dict[str, Any]:
    sizes = ctx.sizes
    records = ctx.workload(sizes.stream_records).records[: sizes.per_record_records]
    batches = [records[i : i + sizes.batch_size] for i in range(0, len(records), sizes.batch_size)]
    places = Indexes(ctx)
    _warm_handler(ctx, places, batches[0])
    handler = Samples("projector handler", "records/s")
    naive = Samples("one request per record (AWS tutorial)", "records/s")
    checks: dict[str, Any] = {"handler_failed_batches": 0}

    def run_handler(_: int) -> None:
        places.fresh_handler_index()
        seconds, failures = timed(lambda: _handle_all(batches))
        handler.add(len(records) / seconds)
        checks["handler_failed_batches"] += failures
        log(f"  handler: {len(records)} records in {seconds:.2f} s")

    def run_naive(_: int) -> None:
        index = places.fresh_baseline_index("per-record")
        seconds, requests = timed(lambda: _per_record(places.client, index, records))
        naive.add(len(records) / seconds)
        checks["per_record_requests"] = requests
        log(f"  per record: {requests} requests in {seconds:.2f} s")

    alternate(sizes.per_record_rounds, {"handler": run_handler, "per_record": run_naive})
    return compare(
        handler,
        naive,
        PER_RECORD_GOAL,
        records=len(records),
        batch_size=sizes.batch_size,
        checks=checks,
        note=f"both on the first {len(records)} records of the handler_vs_bulk stream",
    )
