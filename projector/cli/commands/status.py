"""`projector status`: per projection, where reads and writes go, rebuilds, definition drift, stream lag."""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Any

import click

from projector.cli.output import emit, json_option, print_table

if TYPE_CHECKING:
    from projector.runtime import Runtime

logger = logging.getLogger(__name__)


@click.command("status")
@json_option
def command(as_json: bool) -> None:
    """Show each projection's read index / generation, write targets, rebuild in progress, whether the
    code's definition differs from the stored build (needs a rebuild), and the stream lag if known.

    The lag comes from `projector run`'s checkpoints under PROJECTOR_STATE_DIR/checkpoints/: the age of
    the oldest record not applied yet (0 when caught up). Without them (e.g. in Lambda) it is "unknown".
    """
    from projector.backfill import Rebuilds
    from projector.runtime import Runtime

    runtime = Runtime()
    rebuilds = Rebuilds(runtime)
    projections = []
    for projection in runtime.registry.all:
        try:
            projections.append(rebuilds.layout(projection).to_json())
        except Exception as error:  # one unreachable store must not hide the others
            projections.append({"projection": projection.name, "error": f"{type(error).__name__}: {error}"})
    data = {
        "table": runtime.settings.source_table,
        "stream_lag_s": stream_lag(runtime),
        "projections": projections,
    }

    def human(result: dict[str, Any]) -> None:
        rows = [
            [
                p["projection"],
                p.get("kind", "?"),
                p.get("read") or p.get("error", ""),
                ", ".join(p.get("writes", [])),
                "yes" if p.get("rebuilding") else "no",
                "yes" if p.get("needs_rebuild") else "no",
            ]
            for p in result["projections"]
        ]
        print_table(
            f"projections of {result['table']}",
            ["projection", "kind", "read", "writes", "rebuilding", "needs rebuild"],
            rows,
        )
        lag = result["stream_lag_s"]
        click.echo(f"stream lag: {lag if isinstance(lag, str) else f'{lag:.1f} s'}")

    emit(data, as_json, human)


def stream_lag(runtime: Runtime) -> float | str:
    """Seconds since the oldest record the runner has not applied yet; "unknown" without its checkpoints."""
    from projector.clients import streams_client
    from projector.runner.checkpoints import CheckpointStore

    settings = runtime.settings
    store = CheckpointStore.for_table(settings.state_dir, settings.source_table)
    if not store.path.exists():
        return "unknown"
    try:
        arn = runtime.dynamodb.describe_table(TableName=settings.source_table)["Table"].get("LatestStreamArn")
        shards = store.shards(arn) if arn else {}
        if not shards:
            return "unknown"
        streams = streams_client(settings)
        lag = 0.0
        for shard_id, point in shards.items():
            if point.finished:
                continue
            where: dict[str, Any] = (
                {"ShardIteratorType": "AFTER_SEQUENCE_NUMBER", "SequenceNumber": point.sequence_number}
                if point.sequence_number
                else {"ShardIteratorType": "TRIM_HORIZON"}
            )
            iterator = streams.get_shard_iterator(StreamArn=arn, ShardId=shard_id, **where)["ShardIterator"]
            records = streams.get_records(ShardIterator=iterator, Limit=1).get("Records", [])
            if records:
                created = records[0]["dynamodb"]["ApproximateCreationDateTime"]
                seconds = created.timestamp() if hasattr(created, "timestamp") else float(created)
                lag = max(lag, time.time() - seconds)
        return round(lag, 3)
    except Exception as error:  # lag is a hint: never fail the status over it
        logger.info("stream lag unknown: %s", error)
        return "unknown"
