"""The contract every ``ProjectionStore`` keeps, as tests: subclass ``StoreContract`` and give a ``case``.

tests/unit/test_store_contract_fake.py runs it against the in-memory fake (tests/support/stores.py),
tests/integration/test_store_contract.py against the real search and aggregate stores on the local
servers. The same assertions, so the fake that unit tests of the apply path rely on behaves like the
real stores in everything they check: a redelivery changes nothing, a late older change is stale, a
deleted item stays deleted, and reads stay on one exact build through every rebuild phase.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from projector.changes.batch import SinkResult
from projector.changes.types import Change
from projector.projection.base import Projection
from projector.retry.deadline import Deadline
from projector.stores.base import ProjectionStore
from projector.versioning.state import ItemState
from tests.support.orders import OrderSource as Orders
from tests.support.orders import batch


@dataclass
class StoreCase:
    """A store and one projection it holds (set up, empty)."""

    store: ProjectionStore[Any]
    projection: Projection

    def apply(self, *changes: Change) -> SinkResult:
        return self.store.apply(self.projection, batch(list(changes)), Deadline.after(60))

    def states(self, item_ids: list[str], build: str | None = None) -> dict[str, ItemState]:
        return self.store.read_states(self.projection, item_ids, build)


class StoreContract:
    """What every store must do; a subclass provides the ``case`` fixture."""

    def test_a_redelivery_changes_nothing(self, case: StoreCase) -> None:
        orders = Orders()
        delivery = [orders.put("a"), orders.put("b"), orders.put("a", total=Decimal("12.50"))]
        first = case.apply(*delivery)
        assert not first.failed and not first.poison and first.applied == 3
        before = case.states(["a", "b"])
        assert (before["a"].rev, before["b"].rev) == (2, 1)
        again = case.apply(*delivery)
        assert not again.failed and again.applied == 0 and again.stale == 3
        assert case.states(["a", "b"]) == before

    def test_a_late_older_change_is_stale(self, case: StoreCase) -> None:
        orders = Orders()
        older = orders.put("a")
        newer = orders.put("a", status="SHIPPED")
        assert case.apply(newer).applied == 1
        late = case.apply(older)
        assert late.applied == 0 and late.stale == 1 and not late.failed
        assert case.states(["a"])["a"].rev == 2

    def test_a_deleted_item_stays_deleted_under_an_older_upsert(self, case: StoreCase) -> None:
        orders = Orders()
        created = orders.put("a")
        case.apply(created, orders.remove("a"))
        late = case.apply(created)
        assert late.applied == 0 and late.stale == 1
        assert case.states(["a"])["a"].deleted

    def test_reads_stay_on_an_exact_build_through_a_rebuild(self, case: StoreCase) -> None:
        store, projection, ids = case.store, case.projection, ["a", "b", "c", "d"]
        orders = Orders()
        b_created = orders.put("b")
        case.apply(orders.put("a"), b_created, orders.put("d"))
        case.apply(orders.remove("d"))
        old = store.describe(projection)
        assert not old.rebuilding and old.read is not None
        built = store.begin_rebuild(projection)
        assert store.begin_rebuild(projection) == built  # rejoined, not a second one
        layout = store.describe(projection)
        assert (layout.read, layout.building) == (old.read, built) and built in layout.writes
        assert case.states(["d"], build=built)["d"].deleted  # the tombstone was carried over at begin

        # live changes reach both builds; readers stay on the old one
        case.apply(orders.put("a", total=Decimal("7.25")), orders.put("c"))
        assert store.describe(projection).read == old.read
        assert case.states(["a"])["a"].rev == 2 and "c" in case.states(["c"])
        # the fill of the new build (here a redelivery of b's change: stale in the old build)
        case.apply(b_created)

        assert store.finish_rebuild(projection) == built
        layout = store.describe(projection)
        assert (layout.read, layout.building) == (built, None)
        reading = case.states(ids)
        assert reading == case.states(ids, build=old.read)  # the replaced build is exact too
        assert reading["d"].deleted and reading["a"].rev == 2 and reading["c"].rev == 1

        # after the swap the replaced build is still written, so a rollback lands on an exact build
        case.apply(orders.put("b", status="SHIPPED"))
        assert store.rollback(projection) == old.read
        assert store.describe(projection).read == old.read
        assert case.states(["b"])["b"].rev == 2

        # a rebuild rolled back before its swap leaves reads and writes on the read build
        abandoned = store.begin_rebuild(projection)
        assert abandoned not in (old.read, built)  # a build name is never reused
        assert store.rollback(projection) == old.read
        layout = store.describe(projection)
        assert layout.building is None and layout.writes == (old.read,)
