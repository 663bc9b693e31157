"""``aggregate_writes``: DynamoDB writes of the coalescing AggregateSink against a naive ADD per change.

Subject: ``StreamApplier`` with the real ``AggregateSink`` (both shop-orders aggregates) on Lambda-shaped
batches, counting per batch and projection the group-row ``ADD``s sent per touched group
(``AggregateResult.group_writes``), the contribution-record puts, transactions and requests.
Baseline: for every change, one ``UpdateItem ADD`` per group whose measures it moves (new contributions
minus old ones, from NewImage and OldImage), the usual hand-written approach (and not idempotent),
on the first ``aggregate_naive_records`` changes (its rate is per change, so a prefix is enough).

moto's server is the bottleneck of both (docs/services.md), so changes/s are reported as a ratio, and the
figures that matter are counts: writes per touched group per batch (the goal), writes per change.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from bench.env import AGGREGATES_MODULE, dynamodb_client
from bench.harness import Goal, Samples, alternate, compare, log, quiet_stdout, timed

if TYPE_CHECKING:
    from bench.cases import Context
    from projector.projection.base import AggregateProjection

GOAL = Goal("<=", 1.0)


class _Recording:
    """Wraps the AggregateSink and keeps every result (per batch and projection)."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.results: list[tuple[str, Any]] = []

    def apply(self, projection: Any, items: Sequence[Any], deadline: Any) -> Any:
        result = self.inner.apply(projection, items, deadline)
        self.results.append((projection.name, result))
        return result


def _processor(ctx: Context, table: str) -> tuple[Any, _Recording]:
    from projector.handler import reset_runtime
    from projector.pipeline.stream import StreamApplier
    from projector.runtime import Runtime
    from projector.sinks.aggregates import AggregateSink, ensure_table

    ctx.env.use(AGGREGATES_MODULE)
    engine = Runtime()
    reset_runtime()
    ensure_table(engine.dynamodb, table)
    settings = engine.settings.model_copy(update={"aggregates_table": table})
    recording = _Recording(AggregateSink(engine.dynamodb, settings))
    processor = StreamApplier(engine.registry.all, lambda projection: recording, engine.dead_letters)
    return processor, recording


def _run_sink(processor: Any, batches: list[list[dict[str, Any]]]) -> int:
    from projector.retry.deadline import Deadline

    failed = 0
    with quiet_stdout():
        for batch in batches:
            outcome = processor.apply(batch, Deadline.after(600))
            failed += outcome.first_failed is not None
    return failed


def _naive(
    client: Any, table: str, projections: Sequence[AggregateProjection], records: list[dict[str, Any]]
) -> int:
    """One UpdateItem ADD per (change, group it moves); answers the number of writes."""
    from boto3.dynamodb.types import TypeDeserializer

    deserialize = TypeDeserializer().deserialize
    writes = 0
    for record in records:
        data = record["dynamodb"]
        images = [
            {k: deserialize(v) for k, v in (data.get(name) or {}).items()} or None
            for name in ("OldImage", "NewImage")
        ]
        old, new = images
        if record["eventName"] == "REMOVE":
            new = None
        for projection in projections:
            before = projection.contributions(old) if old else {}
            after = projection.contributions(new) if new else {}
            for group in sorted(before.keys() | after.keys()):
                deltas = {
                    m: after.get(group, {}).get(m, Decimal(0)) - before.get(group, {}).get(m, Decimal(0))
                    for m in projection.measures
                }
                deltas = {m: v for m, v in deltas.items() if v != 0}
                if not deltas:
                    continue
                names = sorted(deltas)
                client.update_item(
                    TableName=table,
                    Key={"pk": {"S": f"naive#{projection.name}#{group}"}, "sk": {"S": "g1"}},
                    UpdateExpression="ADD " + ", ".join(f"#m{i} :m{i}" for i in range(len(names))),
                    ExpressionAttributeNames={f"#m{i}": m for i, m in enumerate(names)},
                    ExpressionAttributeValues={f":m{i}": {"N": str(deltas[m])} for i, m in enumerate(names)},
                )
                writes += 1
    return writes


def _counts(recording: _Recording, changes: int) -> dict[str, Any]:
    touched = sum(len(result.group_writes) for _, result in recording.results)
    group_writes = sum(sum(result.group_writes.values()) for _, result in recording.results)
    record_writes = sum(result.record_writes for _, result in recording.results)
    return {
        "batches_x_projections": len(recording.results),
        "touched_groups": touched,
        "group_writes": group_writes,
        "writes_per_touched_group_per_batch": round(group_writes / touched, 4) if touched else 0.0,
        "max_writes_to_one_group_in_a_batch": max(
            (r.max_group_writes for _, r in recording.results), default=0
        ),
        "record_writes": record_writes,
        "transactions": sum(result.transactions for _, result in recording.results),
        "requests": sum(result.requests for _, result in recording.results),
        "write_actions_per_change": round((record_writes + group_writes) / changes, 4),
        "group_writes_per_change": round(group_writes / changes, 4),
        "applied": sum(result.applied for _, result in recording.results),
        "failed_items": sum(len(result.failed) for _, result in recording.results),
    }


def aggregate_writes(ctx: Context) -> dict[str, Any]:
    from projector.sinks.aggregates import ensure_table

    sizes = ctx.sizes
    records = ctx.workload(sizes.stream_records).records[: sizes.aggregate_records]
    naive_records = records[: sizes.aggregate_naive_records]  # bounded: ~25 ms per UpdateItem on moto
    batches = [records[i : i + sizes.batch_size] for i in range(0, len(records), sizes.batch_size)]
    client = dynamodb_client()
    tables: list[str] = []
    sink_rate = Samples("AggregateSink (coalesced)", "changes/s")
    naive_rate = Samples("UpdateItem ADD per change", "changes/s")
    counts: dict[str, Any] = {}
    naive_writes: list[int] = []

    def run_sink(round_index: int) -> None:
        table = f"{ctx.env.aggregates_table}-{round_index}"
        tables.append(table)
        processor, recording = _processor(ctx, table)
        seconds, failed = timed(lambda: _run_sink(processor, batches))
        sink_rate.add(len(records) / seconds)
        counts.update(_counts(recording, len(records)), failed_batches=failed)
        log(
            f"  sink: {len(records)} changes in {seconds:.2f} s, {counts['group_writes']} group writes over "
            f"{counts['touched_groups']} touched groups, {counts['requests']} requests"
        )

    def run_naive(_: int) -> None:
        from projections.orders import customer_totals, daily_sales

        table = f"{ctx.env.aggregates_table}-naive"
        if table not in tables:
            tables.append(table)
            ensure_table(client, table)
        seconds, writes = timed(lambda: _naive(client, table, (customer_totals, daily_sales), naive_records))
        naive_rate.add(len(naive_records) / seconds)
        naive_writes.append(writes)
        log(f"  naive: {len(naive_records)} changes in {seconds:.2f} s, {writes} UpdateItem")

    try:
        alternate(sizes.aggregate_rounds, {"sink": run_sink, "naive": run_naive})
    finally:
        for table in tables:
            try:
                client.delete_table(TableName=table)
            except Exception as error:  # cleanup must not hide the results
                log(f"cleanup of table {table} failed: {error}")
    entry = compare(
        sink_rate,
        naive_rate,
        GOAL,
        records=len(records),
        batch_size=sizes.batch_size,
        projections=["customer_totals", "daily_sales"],
        sink=counts,
        naive={
            "records": len(naive_records),
            "writes": naive_writes[-1],
            "writes_per_change": round(naive_writes[-1] / len(naive_records), 4),
        },
    )
    entry["changes_per_s_ratio"] = entry["ratio"]
    entry["changes_per_s_ratio_spread"] = entry.pop("ratio_spread")
    entry["ratio"] = counts["writes_per_touched_group_per_batch"]
    entry["ratio_is"] = "group-row writes per touched group per batch (count, not speed)"
    entry["goal_met"] = GOAL.met(entry["ratio"]) and counts["max_writes_to_one_group_in_a_batch"] <= 1
    return entry
