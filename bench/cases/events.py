"""``events_vs_state``: the event projection's records/s against the state projection's, same changes.

Both subjects are a search projection fed through ``StreamApplier`` in Lambda-shaped batches of 100 on
the real OpenSearch: the *state* one gets N MODIFY records of K items (each record the item's new
image, ordered by a version attribute); the *event* one gets N INSERT records of K streams (each record
one event, folded per stream). Both documents have the same fields. Each round starts from fresh
indexes, the runs alternate. The second figure is the gap reads per batch on in-order streams (goal 0:
a stream delivered in order never reads the table).

    .venv/bin/python scripts/bench_events [--changes N] [--rounds R]
"""

from __future__ import annotations

import logging
import os
import statistics
import time
import uuid
from decimal import Decimal
from typing import Any

from pydantic import BaseModel

from projector import AttributeVersion, DocumentProjection
from projector.events import Event, EventStreamProjection

BATCH = 100
MAPPINGS = {"properties": {"id": {"type": "keyword"}, "count": {"type": "long"}, "total": {"type": "double"}}}


class Added(BaseModel):
    amount: Decimal


state_projection = DocumentProjection(
    name="bench_state",
    key_attributes=("id",),
    version=AttributeVersion(attribute="version"),
    mappings=MAPPINGS,
    document=lambda item: {"id": item["id"], "count": item["count"], "total": item["total"]},
)


def _added(state: dict[str, Any], event: Event[Added]) -> dict[str, Any]:
    return {**state, "count": state["count"] + 1, "total": state["total"] + event.data.amount}


event_projection = EventStreamProjection(
    name="bench_events",
    key_attributes=("id",),
    mappings=MAPPINGS,
    initial=lambda stream_id: {"id": stream_id, "count": Decimal(0), "total": Decimal(0)},
    handlers={Added: _added},
)


def _record(number: int, name: str, keys: dict[str, Any], image: dict[str, Any]) -> dict[str, Any]:
    return {
        "eventID": f"e{number}",
        "eventName": name,
        "eventVersion": "1.1",
        "eventSource": "aws:dynamodb",
        "awsRegion": "us-east-1",
        "eventSourceARN": "arn:aws:dynamodb:us-east-1:000000000000:table/bench/stream/x",
        "dynamodb": {
            "ApproximateCreationDateTime": 1767225600 + number // 1000,
            "Keys": keys,
            "NewImage": image,
            "SequenceNumber": str(10**20 + number),
            "SizeBytes": 100,
            "StreamViewType": "NEW_AND_OLD_IMAGES",
        },
    }


def workloads(changes: int, keys: int) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The same changes twice: as state records (item images) and as event records (one per event)."""
    state, events = [], []
    versions = [0] * keys
    totals = [Decimal(0)] * keys
    for number in range(changes):
        key = number % keys
        versions[key] += 1
        amount = Decimal(number % 997) / 100
        totals[key] += amount
        item_id = f"k{key:05d}"
        state.append(
            _record(
                number,
                "MODIFY" if versions[key] > 1 else "INSERT",
                {"id": {"S": item_id}},
                {
                    "id": {"S": item_id},
                    "count": {"N": str(versions[key])},
                    "total": {"N": str(totals[key])},
                    "version": {"N": str(versions[key])},
                },
            )
        )
        stream = f"bench-{item_id}"
        events.append(
            _record(
                number,
                "INSERT",
                {"stream_id": {"S": stream}, "version": {"N": str(versions[key])}},
                {
                    "stream_id": {"S": stream},
                    "version": {"N": str(versions[key])},
                    "type": {"S": "Added"},
                    "data": {"M": {"amount": {"N": str(amount)}}},
                    "recorded_at": {"S": "2026-01-01T00:00:00Z"},
                },
            )
        )
    return state, events


def run(changes: int = 2000, rounds: int = 3) -> dict[str, Any]:
    from projector.config import load_settings
    from projector.deadletters.store import open_store
    from projector.events.sink import EventStreamSink
    from projector.pipeline.stream import StreamApplier
    from projector.retry import Deadline
    from projector.sinks.opensearch import indexes, opensearch_client
    from projector.sinks.opensearch.writer import OpenSearchSink

    logging.getLogger("projector").setLevel(logging.WARNING)
    prefix = f"bench{uuid.uuid4().hex[:6]}-"
    os.environ["PROJECTOR_INDEX_PREFIX"] = prefix
    os.environ.setdefault("PROJECTOR_DEAD_LETTERS", f"file:///tmp/{prefix}dead-letters")
    settings = load_settings()
    client = opensearch_client(settings)
    letters = open_store(settings)
    state_sink, event_sink = OpenSearchSink(client, settings), EventStreamSink(client, None, settings)
    state_records, event_records = workloads(changes, keys=max(1, changes // 10))
    subjects = {
        "state": (
            state_projection,
            state_records,
            StreamApplier((state_projection,), lambda projection: state_sink, letters),
        ),
        "events": (
            event_projection,
            event_records,
            StreamApplier((event_projection,), lambda projection: event_sink, letters),
        ),
    }
    seconds: dict[str, list[float]] = {"state": [], "events": []}
    gap_reads, batches = 0, 0
    try:
        for _ in range(rounds):
            for name, (projection, records, processor) in subjects.items():
                client.indices.delete(index=f"{prefix}{projection.name}-g*", ignore_unavailable=True)
                indexes.ensure(client, projection, prefix)
                started = time.perf_counter()
                for start in range(0, len(records), BATCH):
                    outcome = processor.apply(records[start : start + BATCH], Deadline.after(120))
                    if outcome.first_failed is not None:
                        raise RuntimeError(f"{name}: {outcome.failures}")
                    if name == "events":
                        gap_reads += outcome.gap_reads
                        batches += 1
                seconds[name].append(time.perf_counter() - started)
    finally:
        client.indices.delete(index=f"{prefix}*", ignore_unavailable=True)
        for projection in (state_projection, event_projection):
            client.indices.delete_index_template(name=f"{prefix}{projection.name}", ignore=[404])
    state_rate = changes / statistics.median(seconds["state"])
    event_rate = changes / statistics.median(seconds["events"])
    return {
        "case": "events_vs_state",
        "changes": changes,
        "rounds": rounds,
        "state_records_per_s": round(state_rate, 1),
        "event_records_per_s": round(event_rate, 1),
        "ratio": round(event_rate / state_rate, 3),
        "goal": ">= 0.8",
        "gap_reads_per_batch": gap_reads / batches if batches else 0.0,
        "gap_goal": "0",
    }
