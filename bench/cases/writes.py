"""``handler_vs_same_writes``: the handler against a plain bulk of exactly the writes it makes.

Baseline: a handler without exactness doing the same writes. Per batch it decodes the records (boto3's
``TypeDeserializer``, as the per-record tutorial handler), keeps the final state each item reaches in the
batch and writes it with one ``helpers.bulk`` (``index`` of its document, or ``delete`` when the batch
ends with the item gone), into a plain index with the same mappings and settings: no versions, no
reads, no meta. That is the floor for the same work; the difference to the handler is the price of
exactness (the ``mget``, the fold, the external versions, the tombstones, the alias and uuid lookups).
``handler_vs_bulk`` keeps the bulk of final documents (no decoding, fewer writes) as a ceiling.

The case also records the handler's wall time per batch, which ``cost_per_million`` prices.
"""

from __future__ import annotations

import statistics
from typing import TYPE_CHECKING, Any

from bench.cases.documents import Indexes, _handle_all, _warm_handler
from bench.harness import Goal, Samples, alternate, compare, log, timed

if TYPE_CHECKING:
    from bench.cases import Context

SAME_WRITES_GOAL = Goal(">=", 0.8)
BULK_REPEATS = 3


def batch_writes(batches: list[list[dict[str, Any]]]) -> list[list[tuple[str, dict[str, Any] | None]]]:
    """Per batch: (order id, document or None for a delete), one per item, in first-appearance order."""
    from boto3.dynamodb.types import TypeDeserializer

    from projections.orders import order_document

    deserialize = TypeDeserializer().deserialize
    out = []
    for batch in batches:
        last: dict[str, dict[str, Any]] = {}
        for record in batch:
            last[record["dynamodb"]["Keys"]["order_id"]["S"]] = record
        writes: list[tuple[str, dict[str, Any] | None]] = []
        for order_id, record in last.items():
            image = record["dynamodb"].get("NewImage") if record["eventName"] != "REMOVE" else None
            document = None
            if image is not None:
                document = order_document({name: deserialize(value) for name, value in image.items()})
            writes.append((order_id, document))
        out.append(writes)
    return out


def _actions(index: str, writes: list[tuple[str, dict[str, Any] | None]]) -> list[dict[str, Any]]:
    return [
        {"_index": index, "_id": order_id, "_source": document}
        if document is not None
        else {"_op_type": "delete", "_index": index, "_id": order_id}
        for order_id, document in writes
    ]


def handler_vs_same_writes(ctx: Context) -> dict[str, Any]:
    from opensearchpy import helpers

    sizes = ctx.sizes
    workload = ctx.workload(sizes.stream_records)
    batches = workload.batches(sizes.batch_size)
    live = workload.live
    per_batch = batch_writes(batches)
    places = Indexes(ctx)
    _warm_handler(ctx, places, batches[0])
    handler = Samples("projector handler", "records/s")
    same = Samples("helpers.bulk of the same writes per batch", "records/s")
    handler_batch_seconds: list[float] = []
    checks: dict[str, Any] = {"handler_failed_batches": 0, "documents_expected": len(live)}

    def run_handler(_: int) -> None:
        places.fresh_handler_index()
        seconds, failures = timed(lambda: _handle_all(batches))
        handler.add(len(workload.records) / seconds)
        handler_batch_seconds.append(seconds / len(batches))
        checks["handler_failed_batches"] += failures
        checks["handler_mismatches"] = places.mismatches(places.alias, live)
        log(f"  handler: {len(workload.records)} records in {seconds:.2f} s")

    def bulk_all(index: str) -> int:
        errors = 0
        for batch in batches:
            [writes] = batch_writes([batch])
            # a delete of a document that was never written answers 404: not an error of the baseline
            _, failed = helpers.bulk(
                places.client,
                _actions(index, writes),
                chunk_size=max(1, len(writes)),  # one request per batch, as the handler sends
                max_chunk_bytes=100 * 1024 * 1024,
                stats_only=True,
                raise_on_error=False,
            )
            errors += failed
        return errors

    def run_same(_: int) -> None:
        times = []
        for _ in range(BULK_REPEATS):
            index = places.fresh_baseline_index("same-writes")
            seconds, errors = timed(lambda index=index: bulk_all(index))  # type: ignore[misc]  # a default binds this round's index
            times.append(seconds)
        seconds = statistics.median(times)
        same.add(len(workload.records) / seconds)
        checks["same_writes_mismatches"] = places.mismatches(index, live)
        checks["same_writes_missing_deletes"] = errors
        log(f"  same writes: {len(per_batch)} bulk requests in {seconds:.2f} s (median of {BULK_REPEATS})")

    alternate(sizes.handler_rounds, {"handler": run_handler, "same_writes": run_same})
    writes = sum(len(batch) for batch in per_batch)
    return compare(
        handler,
        same,
        SAME_WRITES_GOAL,
        records=len(workload.records),
        batches=len(batches),
        batch_size=sizes.batch_size,
        document_writes=writes,
        deletes=sum(document is None for batch in per_batch for _, document in batch),
        handler_seconds_per_batch=round(statistics.median(handler_batch_seconds), 5),
        checks=checks,
        note="both write each item once per batch it appears in, one bulk request per batch; only the "
        "handler reads the stored versions, folds, versions its writes and keeps tombstones",
    )
