"""The store contract (tests/support/store_contract.py) against the in-memory fake store.

The same contract runs against the real search and aggregate stores in
tests/integration/test_store_contract.py, so unit tests built on the fake rely on real behaviour.
"""

from __future__ import annotations

import pytest

from projections.orders import customer_totals, orders
from projector.retry.deadline import Deadline
from projector.stores.base import Connections, ProjectionStore
from projector.stores.kinds import KINDS, kind_of, store_class
from tests.support.store_contract import Orders, StoreCase, StoreContract, batch
from tests.support.stores import InMemoryStore


class TestInMemoryStore(StoreContract):
    @pytest.fixture(params=[orders, customer_totals], ids=["document", "aggregate"])
    def case(self, request: pytest.FixtureRequest) -> StoreCase:
        return StoreCase(InMemoryStore(), request.param)


def test_the_fake_reports_what_tests_ask_it_to() -> None:
    store, source = InMemoryStore(), Orders()
    store.poison["a"], store.fail["b"] = "bad item", "no connection"
    result = store.apply(orders, batch([source.put("a"), source.put("b"), source.put("c")]), Deadline.never())
    assert [error for _, error in result.poison] == ["bad item"] and result.failed == {"b": "no connection"}
    assert result.applied == 1 and list(store.values(orders)) == ["c"]
    store.error = TimeoutError("down")
    with pytest.raises(TimeoutError):
        store.apply(orders, [], Deadline.never())
    assert store.calls == [("orders", ["a", "b", "c"]), ("orders", [])]


def test_every_kind_names_a_store_that_implements_the_whole_interface() -> None:
    for kind in KINDS.values():
        module, _, name = kind.store.partition(":")
        cls = getattr(__import__(module, fromlist=[name]), name)
        assert issubclass(cls, ProjectionStore) and not cls.__abstractmethods__


def test_a_projection_gets_the_store_of_its_kind() -> None:
    from projections.order_events import order_views  # an event-stream projection

    assert [kind_of(p) for p in (orders, customer_totals, order_views)] == [
        "document",
        "aggregate",
        "event_stream",
    ]
    assert store_class(orders).kind == "search" and store_class(customer_totals).kind == "aggregate"


def test_the_runtime_opens_one_store_per_kind_from_connections(monkeypatch: pytest.MonkeyPatch) -> None:
    import projector.runtime
    from projector.config.settings import Settings
    from projector.projection.registry import Registry

    opened: list[tuple[str, Connections]] = []

    def open_store(kind: str, connections: Connections) -> InMemoryStore:
        opened.append((kind, connections))
        return InMemoryStore()

    monkeypatch.setattr(projector.runtime, "open_store", open_store)
    registry = Registry(documents=(orders,), aggregates=(customer_totals,))
    runtime = projector.runtime.Runtime(Settings(), registry)
    first = runtime.store_for(orders)
    assert runtime.store_for(orders) is first and runtime.store_for(customer_totals) is not first
    assert [kind for kind, _ in opened] == ["document", "aggregate"]
    assert all(connections.settings is runtime.settings for _, connections in opened)
