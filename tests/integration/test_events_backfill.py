"""Backfill, rebuild and verify of event projections, with appends flowing meanwhile."""

from __future__ import annotations

import random
import threading
from typing import Any

import pytest

from devservers.event_workload import next_events
from projector.events import ConcurrencyError
from projector.sinks.opensearch import indexes
from tests.integration.test_backfill import StreamApplier, backfill, verify
from tests.support.events import ORDER_EVENTS, assert_exact, events_runtime, store

pytestmark = pytest.mark.integration


@pytest.fixture
def runtime(settings_env: Any, monkeypatch: pytest.MonkeyPatch, opensearch: Any, dynamodb: Any) -> Any:
    monkeypatch.setenv("PROJECTOR_PROJECTIONS", ORDER_EVENTS)
    return events_runtime()


class Appender(threading.Thread):
    """Appends to random order streams (new and existing) until stopped, retrying lost races."""

    def __init__(self, runtime: Any, seed: int, streams: int) -> None:
        super().__init__(daemon=True, name="appender")
        self.events, self.rng, self.streams = store(runtime), random.Random(seed), streams
        self.halt = threading.Event()
        self.appended = 0

    def run(self) -> None:
        while not self.halt.is_set():
            stream = f"order-{self.rng.randrange(self.streams):04d}"
            version = self.events.version(stream)
            try:
                self.events.append(stream, next_events(self.rng, version, stream[6:], 2), version)
                self.appended += 2
            except ConcurrencyError:
                continue


def seed(runtime: Any, streams: int, seed_value: int = 5) -> None:
    events, rng = store(runtime), random.Random(seed_value)
    for number in range(streams):
        events.append(f"order-{number:04d}", next_events(rng, 0, f"{number:04d}", rng.randint(1, 8)), 0)


def test_backfill_and_rebuild_while_appends_flow_lose_nothing(
    runtime: Any, opensearch: Any, dynamodb: Any, dynamodbstreams: Any
) -> None:
    seed(runtime, 16)
    applier = StreamApplier(runtime, dynamodb, dynamodbstreams, batch=25)
    applier.start()
    appender = Appender(runtime, seed=8, streams=22)  # streams 16..21 begin during the backfill
    appender.start()
    try:
        report = backfill(runtime, segments=3, page_size=11)
        assert report.status == "finished", report.to_json()
        rebuilt = backfill(runtime, segments=2, page_size=13, rebuild=True)
        assert rebuilt.status == "finished", rebuilt.to_json()
    finally:
        appender.halt.set()
        appender.join(timeout=60)
    applier.drain()
    assert appender.appended > 0
    assert applier.errors == []
    views = runtime.registry.document("order_views")
    described = indexes.describe(opensearch, views, runtime.settings.index_prefix)
    assert described.generation == 2  # reads moved to the rebuilt index
    assert_exact(runtime, opensearch)
    assert verify(runtime, settle_s=0).drift == 0


def test_verify_finds_each_kind_of_drift_and_repair_puts_it_right(runtime: Any, opensearch: Any) -> None:
    seed(runtime, 12)
    assert backfill(runtime, segments=2).status == "finished"
    assert verify(runtime, settle_s=0).drift == 0
    views = runtime.registry.document("order_views")
    index = indexes.read_index(opensearch, views, runtime.settings.index_prefix)

    def rewrite(doc_id: str, change: Any) -> None:
        found = opensearch.get(index=index, id=doc_id)
        body = found["_source"]
        change(body)
        opensearch.index(
            index=index, id=doc_id, body=body, version=found["_version"], version_type="external_gte"
        )

    rewrite("0001", lambda body: body.update(status="BOGUS"))  # mismatch
    rewrite("0002", lambda body: body["_projector"].update(visible=False))  # missing
    ghost = opensearch.get(index=index, id="0003")["_source"]
    opensearch.index(index=index, id="GHOST", body=ghost, version=1, version_type="external")  # extra
    events = store(runtime)
    version = events.version("order-0004")
    events.append(
        "order-0004", next_events(random.Random(1), version, "0004", 2), version
    )  # stale: not streamed
    opensearch.indices.refresh(index=index)

    report = verify(runtime, settle_s=0.5, repair=True)
    found = report.projections["order_views"]
    assert sorted((f.kind, f.id) for f in found.findings) == [
        ("extra", "GHOST"),
        ("mismatch", "0001"),
        ("missing", "0002"),
        ("stale", "0004"),
    ]
    assert found.repaired == 4
    assert report.after_repair is not None and report.after_repair.drift == 0
    assert_exact_without_ghost(runtime, opensearch, index)


def assert_exact_without_ghost(runtime: Any, opensearch: Any, index: str) -> None:
    ghost = opensearch.get(index=index, id="GHOST")["_source"]
    assert ghost["_projector"]["visible"] is False  # now a hidden tombstone
    opensearch.delete(index=index, id="GHOST")
    assert_exact(runtime, opensearch)


def test_a_dry_run_reads_every_event_and_writes_nothing(runtime: Any, opensearch: Any) -> None:
    seed(runtime, 6)
    report = backfill(runtime, segments=2, dry_run=True)
    assert report.status == "finished"
    assert report.would_write["order_views"] == {"documents": 6, "hidden": 0}
    alias = runtime.settings.index_prefix + "order_views"
    opensearch.indices.refresh(index=alias)
    assert opensearch.count(index=alias)["count"] == 0
