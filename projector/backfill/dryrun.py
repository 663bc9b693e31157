"""``--dry-run``: a sink that projects every scanned item as the real sinks would, and writes nothing.

It folds each item from an empty state through the same version rules and renders it with the same
projection code (documents also through the exact JSON serializer), so poison is found as in a real
run; it counts what would be written instead of writing it.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from projector.projection.base import AggregateProjection, DocumentProjection, Projection
from projector.sinks.opensearch.serializer import dumps
from projector.stores.base import ItemChanges, SinkResult
from projector.versioning import fold, scheme_for

if TYPE_CHECKING:
    from projector.changes.types import Change
    from projector.retry import Deadline


@dataclass(slots=True)
class WouldWrite:
    """What a real run would write for one projection."""

    documents: int = 0
    hidden: int = 0
    contributions: int = 0
    groups: set[str] = field(default_factory=set)

    def to_json(self, projection: Projection) -> dict[str, Any]:
        if isinstance(projection, DocumentProjection):
            return {"documents": self.documents, "hidden": self.hidden}
        return {"items_contributing": self.contributions, "groups": len(self.groups)}


class CollectingSink:
    """Counts the writes a page would cause, per projection; thread-safe."""

    def __init__(self) -> None:
        self.would_write: dict[str, WouldWrite] = {}
        self._lock = threading.Lock()

    def apply(self, projection: Projection, items: Sequence[ItemChanges], deadline: Deadline) -> SinkResult:
        result = SinkResult()
        if getattr(projection, "kind", None) == "event_stream":  # events hook
            return self._events(projection, items, result)
        scheme = scheme_for(projection.version)
        render = _renderer(projection)
        tally = WouldWrite()
        for entry in items:
            folded = fold(scheme, None, entry.changes, render, projection.keep_expired)
            result.poison.extend(folded.poison)
            result.stale += len(folded.stale)
            if folded.state is None:
                continue
            result.applied += len(folded.applied)
            output = folded.output
            if isinstance(projection, DocumentProjection):
                if output is None:
                    tally.hidden += 1
                else:
                    tally.documents += 1
            elif output:
                tally.contributions += 1
                tally.groups.update(output)
        with self._lock:
            total = self.would_write.setdefault(projection.name, WouldWrite())
            total.documents += tally.documents
            total.hidden += tally.hidden
            total.contributions += tally.contributions
            total.groups |= tally.groups
        return result

    def _events(self, projection: Any, items: Sequence[ItemChanges], result: SinkResult) -> SinkResult:
        """Event streams: every event is read and typed as the event sink would; one document per stream
        (a stream split across two pages counts once per page: an estimate, like ItemCount)."""
        from projector.events.types import EventError

        streams: set[str] = set()
        for entry in items:
            for change in entry.changes:
                try:
                    projection.typed_event(change.image or {})
                except EventError as error:
                    result.poison.append((change, str(error)))
                    continue
                result.applied += 1
                streams.add(entry.item_id)
        with self._lock:
            self.would_write.setdefault(projection.name, WouldWrite()).documents += len(streams)
        return result


def _renderer(projection: Projection) -> Any:
    if isinstance(projection, AggregateProjection):
        return lambda change: projection.contributions(change.image)

    def document(change: Change) -> Any:
        body = projection.document(change.image)  # type: ignore[union-attr]
        if body is not None:
            dumps(body)  # raises as the real sink would on a number JSON cannot carry exactly
        return body

    return document
