"""Property: however stream records arrive, every document is the fold of its stream and no event counts twice.

Random appends across streams; their stream records delivered in random batchings, permutations, with
duplicates and with records missing, through the real pipeline on the real servers. After each example
every stream's document is exactly the fold of events 1..v of its stream as read from the table, where
v is the newest version delivered (missing versions are read from the table), and every aggregate row
equals the sum over the distinct events delivered.
"""

from __future__ import annotations

import random
from collections import defaultdict
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from devservers.event_workload import next_events
from projector.events.fold import fold_all
from projector.retry import Deadline
from projector.sinks.aggregates import read_aggregate
from projector.sinks.opensearch.serializer import to_json
from projector.sinks.opensearch.types import META_FIELD
from tests.support.events import ORDER_EVENTS, events_runtime, store, table_items
from tests.support.streams import capture_records

pytestmark = pytest.mark.integration

DAYS = ("2026-01-01", "2026-01-02", "2026-01-03")


@pytest.fixture
def runtime(settings_env: Any, monkeypatch: pytest.MonkeyPatch, opensearch: Any, dynamodb: Any) -> Any:
    monkeypatch.setenv("PROJECTOR_PROJECTIONS", ORDER_EVENTS)
    return events_runtime()


class World:
    """What the examples of one test share: the delivered events (for the aggregates), a counter."""

    def __init__(self) -> None:
        self.example = 0
        self.delivered: set[tuple[str, int]] = set()


@pytest.fixture
def world() -> World:
    return World()  # one per test function: shared by its examples


@settings(
    max_examples=10,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
def test_any_delivery_folds_exactly(
    runtime: Any, opensearch: Any, dynamodbstreams: Any, world: World, data: Any
) -> None:
    world.example += 1
    seed = data.draw(st.integers(0, 2**32 - 1), label="seed")
    rng = random.Random(seed)
    streams = [
        f"order-x{world.example:03d}s{n}" for n in range(data.draw(st.integers(1, 4), label="streams"))
    ]
    events = store(runtime)
    versions = dict.fromkeys(streams, 0)
    for _ in range(data.draw(st.integers(1, 8), label="appends")):
        stream = rng.choice(streams)
        batch = next_events(rng, versions[stream], stream.removeprefix("order-"), rng.randint(1, 3))
        versions[stream] = events.append(stream, batch, versions[stream])

    records = [
        record
        for record in capture_records(runtime.dynamodb, dynamodbstreams, runtime.settings.source_table)
        if record["dynamodb"]["Keys"]["stream_id"]["S"] in versions
    ]
    drop = data.draw(st.floats(0, 0.5), label="drop")
    duplicate = data.draw(st.floats(0, 0.5), label="duplicate")
    kept = [record for record in records if rng.random() >= drop]
    delivered = kept + [record for record in kept if rng.random() < duplicate]
    if data.draw(st.booleans(), label="shuffle"):
        rng.shuffle(delivered)
    size = data.draw(st.integers(1, 12), label="batch size")
    for start in range(0, len(delivered), size):
        outcome = runtime.stream_applier.apply(delivered[start : start + size], Deadline.after(60))
        assert outcome.first_failed is None, outcome.failures
        assert outcome.dead_lettered == 0

    newest: dict[str, int] = defaultdict(int)
    for record in delivered:
        keys = record["dynamodb"]["Keys"]
        version = int(keys["version"]["N"])
        newest[keys["stream_id"]["S"]] = max(newest[keys["stream_id"]["S"]], version)
        world.delivered.add((keys["stream_id"]["S"], version))

    views = runtime.registry.document("order_views")
    items = table_items(runtime)
    by_stream: dict[str, list[tuple[int, Any]]] = defaultdict(list)
    for item in items:
        by_stream[item["stream_id"]].append((int(item["version"]), views.typed_event(item)))
    alias = runtime.settings.index_prefix + "order_views"
    for stream in streams:
        stored = opensearch.get(index=alias, id=views.doc_id(stream), ignore=404)
        if newest[stream] == 0:
            assert not stored.get("found"), stream
            continue
        steps = sorted(step for step in by_stream[stream] if step[0] <= newest[stream])
        expected = fold_all(views, stream, steps).state
        assert stored["_version"] == newest[stream] == expected.version, stream
        body = dict(stored["_source"])
        assert body.pop(META_FIELD)["rev"] == expected.version
        assert body == to_json(expected.document), stream

    paid = runtime.registry.aggregate("paid_by_day")
    sums: dict[str, dict[str, Decimal]] = defaultdict(lambda: defaultdict(Decimal))
    for item in items:
        if (item["stream_id"], int(item["version"])) in world.delivered:
            for group, measures in paid.contributions(item).items():
                for name, value in measures.items():
                    sums[group][name] += value
    for day in DAYS:
        row = read_aggregate(runtime.dynamodb, runtime.settings, paid, day)
        assert row["order_count"] == int(sums[day]["order_count"]), day
        assert Decimal(row["revenue"]) == sums[day]["revenue"], day
