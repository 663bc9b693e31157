"""Zero-downtime rebuilds of any projection: the phases a backfill ``--rebuild`` walks through.

Each projection's store does the work (``projector.stores``): ``begin`` adds a new build that live
stream writes reach at once, the backfill fills it through the ordinary apply path, ``finish`` swaps
reads over in one atomic step; readers see the old build until then. Tombstones and kept TTL-expired
documents, which no scan sees, are carried over at begin and again before the swap, so a deleted item
stays deleted after any number of rebuilds and rollbacks. After the swap the replaced build is still
written until the next rebuild begins, so a rollback returns to an exact build.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from projector.stores.base import Layout

if TYPE_CHECKING:
    from projector.projection.base import Projection
    from projector.runtime import Runtime

__all__ = ["Layout", "Rebuilds"]


class Rebuilds:
    """Begin, carry over, finish, roll back and describe rebuilds of the projections of ``runtime``."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime

    def kind(self, projection: Projection) -> str:
        """What reports call the projection's store ("search", "aggregate")."""
        return self.runtime.store_for(projection).kind

    def begin(self, projection: Projection) -> str:
        """Start (or rejoin, same definition) a rebuild; the new index or generation (``g{N}``)."""
        return self.runtime.store_for(projection).begin_rebuild(projection)

    def carry_over(self, projection: Projection) -> dict[str, Any]:
        return self.runtime.store_for(projection).carry_over(projection)

    def finish(self, projection: Projection) -> str:
        """Swap reads to the rebuilt index or generation, atomically; what now serves reads."""
        return self.runtime.store_for(projection).finish_rebuild(projection)

    def rollback(self, projection: Projection) -> str:
        """Abandon a rebuild in progress, or swap back to the previous build; what serves reads now."""
        return self.runtime.store_for(projection).rollback(projection)

    def layout(self, projection: Projection) -> Layout:
        return self.runtime.store_for(projection).describe(projection)
