"""The store of event-stream projections: one search document per stream, folded from its events.

Its documents live in OpenSearch exactly like search documents (same aliases, builds and carry-over),
so it is the search store with another writer: ``EventStreamSink`` folds each stream's events from the
stored document on, reading the events table to fill gaps.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from projector.changes.batch import SinkResult
from projector.events.sink import EventStreamSink
from projector.events.types import EventError
from projector.sinks.opensearch.writer import OpenSearchSink
from projector.stores.base import WouldWrite
from projector.stores.search import SearchDocumentStore

if TYPE_CHECKING:
    from projector.changes.batch import ItemChanges
    from projector.config.settings import Settings
    from projector.projection.base import DocumentProjection
    from projector.retry.deadline import Deadline
    from projector.sinks.opensearch.carryover import Gone
    from projector.stores.base import Connections


class EventStreamStore(SearchDocumentStore):
    """Stream documents of every event-stream projection; ``read_states`` takes document ids."""

    def __init__(
        self, client: Any, dynamodb: Any, settings: Settings, *, missing_from_source: Gone | None = None
    ) -> None:
        # documents are read as search documents are; written only by the event writer
        super().__init__(
            client, settings, writer=OpenSearchSink(client, settings), missing_from_source=missing_from_source
        )
        self.events = EventStreamSink(client, dynamodb, settings)

    @classmethod
    def open(cls, connections: Connections) -> EventStreamStore:
        return cls(
            connections.opensearch(),
            connections.dynamodb(),
            connections.settings,
            missing_from_source=connections.missing_from_source,
        )

    @classmethod
    def preview(
        cls, projection: DocumentProjection, items: Sequence[ItemChanges], tally: WouldWrite
    ) -> SinkResult:
        """Every event is read and typed as the event writer would; one document per stream (a stream
        split across two pages counts once per page: an estimate, like the backfill's item count)."""
        result = SinkResult()
        streams: set[str] = set()
        for entry in items:
            for change in entry.changes:
                try:
                    projection.typed_event(change.image or {})  # type: ignore[attr-defined]  # an event-stream projection by the registry
                except EventError as error:
                    result.poison.append((change, str(error)))
                    continue
                result.applied += 1
                streams.add(entry.item_id)
        tally.counts["documents"] += len(streams)
        return result

    def apply(
        self, projection: DocumentProjection, items: Sequence[ItemChanges], deadline: Deadline
    ) -> SinkResult:
        return self.events.apply(projection, items, deadline)  # type: ignore[arg-type]  # an event-stream projection by the registry
