"""``--dry-run``: a stand-in store that previews every scanned item as the real stores would, writing nothing.

Each projection's store previews its items (``ProjectionStore.preview``): folded from an empty state
through the same version rules and rendered with the same projection code, so poison is found as in a
real run; what would be written is counted instead of written.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING

from projector.changes.batch import ItemChanges, SinkResult
from projector.stores.base import WouldWrite as _Tally
from projector.stores.kinds import store_class

if TYPE_CHECKING:
    from projector.projection.base import Projection
    from projector.retry import Deadline


class WouldWrite(_Tally):
    """What a real run would write for one projection, reported in its store's terms."""

    def to_json(self, projection: Projection) -> dict[str, int]:
        return self.counted(store_class(projection).would_write_fields)


class CollectingSink:
    """Counts the writes a page would cause, per projection; thread-safe."""

    def __init__(self) -> None:
        self.would_write: dict[str, WouldWrite] = {}
        self._lock = threading.Lock()

    def apply(self, projection: Projection, items: Sequence[ItemChanges], deadline: Deadline) -> SinkResult:
        tally = WouldWrite()
        result = store_class(projection).preview(projection, items, tally)
        with self._lock:
            self.would_write.setdefault(projection.name, WouldWrite()).add(tally)
        return result


__all__ = ["CollectingSink", "WouldWrite"]
