"""The event store on the moto server: racing writers, the CLI, and setup of an events table."""

from __future__ import annotations

import json
import os
import threading
from typing import Any

import pytest

from projector.events import ConcurrencyError, EventStore, NewEvent
from tests.integration.test_backfill import cli
from tests.support.events import ORDER_EVENTS, events_runtime

pytestmark = pytest.mark.integration

# The acceptance run is 1,000 races (PROJECTOR_EVENT_RACES=1000, about two minutes on the moto server);
# the suite runs fewer, which exercise exactly the same path.
RACES = int(os.environ.get("PROJECTOR_EVENT_RACES", "60"))


@pytest.fixture
def runtime(settings_env: Any, monkeypatch: pytest.MonkeyPatch, dynamodb: Any) -> Any:
    monkeypatch.setenv("PROJECTOR_PROJECTIONS", ORDER_EVENTS)
    return events_runtime()


def test_two_writers_racing_write_every_version_exactly_once(runtime: Any) -> None:
    """Each round both writers append at the version they last saw, released together by a barrier:
    exactly one wins, the loser learns the actual version from the error and tries in the next round."""
    table = runtime.settings.source_table
    stream = "order-race"
    barrier = threading.Barrier(2, timeout=30)
    won: dict[str, list[int]] = {"a": [], "b": []}
    lost: dict[str, list[tuple[int, int]]] = {"a": [], "b": []}
    errors: list[BaseException] = []

    def writer(name: str) -> None:
        store = EventStore(runtime.dynamodb, table)
        known = 0
        try:
            for _ in range(RACES):
                barrier.wait()
                try:
                    known = store.append(stream, [NewEvent("Race", {"writer": name})], expected_version=known)
                    won[name].append(known)
                except ConcurrencyError as error:
                    lost[name].append((known, error.actual))
                    known = error.actual
        except BaseException as error:  # surfaced below; a broken barrier releases the other writer
            errors.append(error)
            barrier.abort()

    threads = [threading.Thread(target=writer, args=(name,)) for name in won]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=600)
    assert not errors, errors
    assert not any(thread.is_alive() for thread in threads)
    # Every race had exactly one winner, and each loser was told the version the winner wrote.
    versions = sorted(won["a"] + won["b"])
    assert versions == list(range(1, RACES + 1))
    assert len(lost["a"]) + len(lost["b"]) == RACES
    assert all(actual == expected + 1 for side in lost.values() for expected, actual in side)
    stored = list(EventStore(runtime.dynamodb, table).read(stream))
    assert [event.version for event in stored] == list(range(1, RACES + 1))
    for event in stored:  # the event at each version is the winner's
        assert event.version in won[event.data["writer"]]


def test_cli_append_read_and_a_lost_race(runtime: Any) -> None:
    first = cli(
        "events",
        "append",
        "order-7",
        "--expected-version",
        "0",
        "--type",
        "OrderPlaced",
        "--data",
        '{"order_id": "7", "customer_id": "C1", "placed_at": "2026-01-01T00:00:00Z"}',
        "--json",
    )
    assert first.returncode == 0, first.stderr
    assert json.loads(first.stdout) == {"stream": "order-7", "version": 1, "type": "OrderPlaced"}
    second = cli(
        "events",
        "append",
        "order-7",
        "--expected-version",
        "1",
        "--type",
        "ItemAdded",
        "--data",
        '{"sku": "A", "title": "blue mug", "qty": 2, "price": 12.5}',
    )
    assert second.returncode == 0, second.stderr
    lost = cli(
        "events", "append", "order-7", "--expected-version", "1", "--type", "OrderPaid", "--data", "{}"
    )
    assert lost.returncode == 1
    assert lost.stderr.strip().count("\n") == 0
    assert "order-7" in lost.stderr and "version 2" in lost.stderr
    read = cli("events", "read", "order-7", "--json")
    assert read.returncode == 0, read.stderr
    events = json.loads(read.stdout)
    assert [(e["version"], e["type"]) for e in events] == [(1, "OrderPlaced"), (2, "ItemAdded")]
    assert events[1]["data"] == {"sku": "A", "title": "blue mug", "qty": 2, "price": 12.5}


def test_setup_creates_the_events_table_with_its_stream(runtime: Any, dynamodb: Any) -> None:
    table = dynamodb.describe_table(TableName=runtime.settings.source_table)["Table"]
    assert {(k["AttributeName"], k["KeyType"]) for k in table["KeySchema"]} == {
        ("stream_id", "HASH"),
        ("version", "RANGE"),
    }
    assert {(a["AttributeName"], a["AttributeType"]) for a in table["AttributeDefinitions"]} == {
        ("stream_id", "S"),
        ("version", "N"),
    }
    assert table["StreamSpecification"]["StreamEnabled"]
