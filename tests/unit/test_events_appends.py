"""EventStore on moto's in-process DynamoDB: append with version checks, the 100-event limit, paging."""

from __future__ import annotations

from decimal import Decimal

import boto3
import pytest
from moto import mock_aws

from projector.events import AppendError, ConcurrencyError, EventStore, NewEvent, eventsourcing_preset
from projector.events.store import create_events_table


@pytest.fixture
def client():
    with mock_aws():
        dynamodb = boto3.client("dynamodb", region_name="us-east-1")
        yield dynamodb


def _store(client, layout=None) -> EventStore:
    store = EventStore(client, "events", layout)
    create_events_table(client, "events", store.layout)
    return store


def test_append_then_read_in_version_order(client) -> None:
    store = _store(client)
    assert store.append("order-1", [("OrderPlaced", {"order_id": "1"})], expected_version=0) == 1
    assert (
        store.append(
            "order-1", [NewEvent("ItemAdded", {"qty": 2, "price": Decimal("9.99")})] * 3, expected_version=1
        )
        == 4
    )
    events = list(store.read("order-1"))
    assert [e.version for e in events] == [1, 2, 3, 4]
    assert events[1].data == {"qty": Decimal(2), "price": Decimal("9.99")}
    assert events[0].recorded_at and events[0].recorded_at.endswith("Z")
    assert [e.version for e in store.read("order-1", after=1, up_to=3)] == [2, 3]
    assert [e.version for e in store.read("order-1", page_size=1)] == [1, 2, 3, 4]
    assert store.version("order-1") == 4
    assert store.version("order-2") == 0


def test_wrong_expected_version_names_the_actual_one(client) -> None:
    store = _store(client)
    store.append("order-1", [("A", {})] * 2, expected_version=0)
    with pytest.raises(ConcurrencyError) as behind:
        store.append("order-1", [("B", {})], expected_version=1)
    assert behind.value.actual == 2
    assert "order-1" in str(behind.value) and "version 2" in str(behind.value)
    with pytest.raises(ConcurrencyError) as ahead:  # a writer that thinks the stream is further on
        store.append("order-1", [("B", {})], expected_version=5)
    assert ahead.value.actual == 2
    assert store.version("order-1") == 2  # nothing written by either attempt


def test_at_most_100_events_per_append(client) -> None:
    store = _store(client)
    assert store.append("s-1", [("A", {"n": i}) for i in range(100)], expected_version=0) == 100
    assert store.append("s-1", [("A", {"n": i}) for i in range(100)], expected_version=100) == 200
    with pytest.raises(ConcurrencyError):
        store.append("s-1", [("A", {})] * 100, expected_version=150)
    with pytest.raises(AppendError, match="at most 100"):
        store.append("s-1", [("A", {})] * 101, expected_version=200)
    assert store.version("s-1") == 200


def test_floats_are_refused_with_the_field(client) -> None:
    store = _store(client)
    with pytest.raises(AppendError, match="data"):
        store.append("s-1", [("A", {"price": 1.5})], expected_version=0)


def test_eventsourcing_layout_round_trip(client) -> None:
    store = _store(client, eventsourcing_preset())
    stream = "6f1c9c2e-1111-4a5b-9c2e-000000000001"
    store.append(stream, [("app:Dog.Registered", {"name": "Fido", "amount": Decimal("1.25")})], 0)
    raw = client.scan(TableName="events")["Items"][0]
    assert set(raw) == {"originator_id", "originator_version", "topic", "state", "created_at"}
    assert "B" in raw["state"] and "N" in raw["created_at"]
    [event] = store.read(stream)
    assert event.type == "Dog.Registered"
    assert event.data == {"name": "Fido", "amount": Decimal("1.25")}
