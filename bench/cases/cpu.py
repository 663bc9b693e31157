"""``cpu_vs_deserializer``: µs per record of the engine with no I/O, against boto3's TypeDeserializer alone.

Subject: ``StreamApplier.apply`` over Lambda-shaped batches with the real ``OpenSearchSink`` on a
client that only collects (``bench.stubs``): validate, decode Keys/NewImage/OldImage, group per item,
fold, render the document, serialise it exactly and build the bulk lines. Baseline: boto3's
``TypeDeserializer`` decoding the same NewImage and OldImage, and nothing else. Same records, one process,
alternating runs, timed in process CPU seconds (a busy machine stretches wall time, not CPU time);
CPU-bound, so the figures compare across machines only as a ratio.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from bench.harness import Goal, Samples, alternate, compare, log, timed_cpu

if TYPE_CHECKING:
    from bench.cases import Context

GOAL = Goal("<=", 1.5)  # issue 19: on the way to 1.0


def collecting_processor(prefix: str = "") -> tuple[Any, Any]:
    """A StreamApplier for ``orders`` whose sink writes nowhere; and the collecting client."""
    from bench.stubs import CollectingClient
    from projections.orders import orders
    from projector.config.settings import Settings
    from projector.deadletters.store import FileDeadLetterStore
    from projector.pipeline.stream import StreamApplier
    from projector.projection.registry import Registry
    from projector.sinks.opensearch.writer import OpenSearchSink

    client = CollectingClient(prefix)
    settings = Settings(index_prefix=prefix)
    registry = Registry(documents=(orders,), by_name={orders.name: orders})
    sink = OpenSearchSink(client, settings)  # type: ignore[arg-type]
    processor = StreamApplier(
        registry.all, lambda projection: sink, FileDeadLetterStore(_nowhere()), parallel=False
    )
    return processor, client


def _nowhere() -> Any:
    from pathlib import Path

    return Path("/nonexistent/projector-bench-dead-letters")  # a dead letter here would fail loudly


def process_all(processor: Any, batches: list[list[dict[str, Any]]]) -> int:
    from projector.retry.deadline import Deadline

    applied = 0
    for batch in batches:
        outcome = processor.apply(batch, Deadline.never())
        if outcome.first_failed is not None or outcome.dead_lettered:
            raise RuntimeError(f"the collecting run failed: {outcome.summary()}")
        applied += outcome.applied
    return applied


def deserialize_all(records: list[dict[str, Any]]) -> None:
    from boto3.dynamodb.types import TypeDeserializer

    deserialize = TypeDeserializer().deserialize
    for record in records:
        data = record["dynamodb"]
        for name in ("NewImage", "OldImage"):
            image = data.get(name)
            if image is not None:
                {key: deserialize(value) for key, value in image.items()}


def cpu_vs_deserializer(ctx: Context) -> dict[str, Any]:
    sizes = ctx.sizes
    records = ctx.workload(sizes.stream_records).records[: sizes.cpu_records]
    batches = [records[i : i + sizes.batch_size] for i in range(0, len(records), sizes.batch_size)]
    import projector.observability  # noqa: F401 - Powertools' log handler, as the handler has it installed

    processor, client = collecting_processor()
    process_all(processor, batches[:1])  # warm every path once
    deserialize_all(records[:200])
    ours = Samples("StreamApplier, collecting sink", "µs/record")
    boto3 = Samples("boto3 TypeDeserializer (images only)", "µs/record")
    facts: dict[str, Any] = {}

    def run_ours(_: int) -> None:
        client.bulk_actions = client.bulk_bytes = 0
        seconds, applied = timed_cpu(lambda: process_all(processor, batches))
        ours.add(seconds / len(records) * 1e6)
        facts.update(applied=applied, bulk_actions=client.bulk_actions, bulk_bytes=client.bulk_bytes)

    def run_boto3(_: int) -> None:
        seconds, _ = timed_cpu(lambda: deserialize_all(records))
        boto3.add(seconds / len(records) * 1e6)

    alternate(sizes.cpu_rounds, {"ours": run_ours, "boto3": run_boto3})
    log(f"  ours {ours.median:.1f} µs/record, TypeDeserializer {boto3.median:.1f} µs/record")
    return compare(ours, boto3, GOAL, records=len(records), batch_size=sizes.batch_size, **facts)
