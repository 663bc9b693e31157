"""The store of search projections: versioned documents in OpenSearch, one index per build.

A rebuild gets a new physical index from the current template, added to the write alias so live stream
writes reach it at once; ``finish_rebuild`` moves the read alias in one atomic alias update. After the
swap the replaced index stays written until the next rebuild begins, so a rollback returns to an exact
index. Tombstones (and, for ``keep_expired``, documents whose item left the table), which no scan sees,
are carried from the read index into the new one at begin and again before the swap.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, ClassVar

from projector.changes.batch import ItemChanges, SinkResult
from projector.projection.base import DocumentProjection
from projector.sinks.opensearch import indexes
from projector.sinks.opensearch.carryover import Gone, carry_documents
from projector.sinks.opensearch.known import KnownStates
from projector.sinks.opensearch.serializer import dumps
from projector.sinks.opensearch.writer import OpenSearchSink
from projector.stores.base import Layout, ProjectionStore, WouldWrite
from projector.versioning import fold, scheme_for

if TYPE_CHECKING:
    from projector.changes.types import Change
    from projector.config.settings import Settings
    from projector.retry.deadline import Deadline
    from projector.sinks.opensearch.types import StoredDocument
    from projector.stores.base import Connections
    from projector.versioning.state import ItemState

logger = logging.getLogger(__name__)


class SearchDocumentStore(ProjectionStore[DocumentProjection]):
    """Search documents of every document projection, behind their read and write aliases."""

    kind: ClassVar[str] = "search"
    would_write_fields: ClassVar[tuple[str, ...]] = ("documents", "hidden")

    def __init__(
        self,
        client: Any,
        settings: Settings,
        *,
        writer: OpenSearchSink | None = None,
        missing_from_source: Gone | None = None,
    ) -> None:
        self.client = client
        self.settings = settings
        self.prefix = settings.index_prefix
        # the writer lives as long as the store (a warm Lambda container): it remembers stored states
        self.writer = writer or OpenSearchSink(client, settings, known=KnownStates())
        self.missing_from_source = missing_from_source  # the ids gone from the source table (keep_expired)

    @classmethod
    def open(cls, connections: Connections) -> SearchDocumentStore:
        return cls(
            connections.opensearch(),
            connections.settings,
            missing_from_source=connections.missing_from_source,
        )

    @classmethod
    def preview(
        cls, projection: DocumentProjection, items: Sequence[ItemChanges], tally: WouldWrite
    ) -> SinkResult:
        def render(change: Change) -> Any:
            body = projection.document(change.image)  # type: ignore[arg-type]  # never called for a REMOVE
            if body is not None:
                dumps(body)  # raises as the writer would on a number JSON cannot carry exactly
            return body

        result = SinkResult()
        scheme = scheme_for(projection.version)
        for entry in items:
            folded = fold(scheme, None, entry.changes, render, projection.keep_expired)
            result.poison.extend(folded.poison)
            result.stale += len(folded.stale)
            if folded.state is None:
                continue
            result.applied += len(folded.applied)
            tally.counts["hidden" if folded.output is None else "documents"] += 1
        return result

    def apply(
        self, projection: DocumentProjection, items: Sequence[ItemChanges], deadline: Deadline
    ) -> SinkResult:
        return self.writer.apply(projection, items, deadline)

    def read_documents(
        self, projection: DocumentProjection, item_ids: Sequence[str], build: str | None = None
    ) -> dict[str, StoredDocument]:
        """Stored documents of ``item_ids`` (tombstones and hidden ones too) with their bodies."""
        return self.writer.read_documents(projection, item_ids, index=build)

    def read_states(
        self, projection: DocumentProjection, item_ids: Sequence[str], build: str | None = None
    ) -> dict[str, ItemState]:
        return {
            item_id: doc.state for item_id, doc in self.read_documents(projection, item_ids, build).items()
        }

    def read_index(self, projection: DocumentProjection) -> str | None:
        """The physical index serving reads (None before ``projector setup``)."""
        return indexes.read_index(self.client, projection, self.prefix)

    def describe(self, projection: DocumentProjection) -> Layout:
        found = indexes.describe(self.client, projection, self.prefix)
        # A write target newer than the read index is a rebuild in progress; an older one is the previous
        # build, still written after a swap so that a rollback returns to an exact index.
        names = indexes.names(projection, self.prefix)
        current = names.generation_of(found.read_index or "") or 0
        newer = [name for name in found.write_indexes if (names.generation_of(name) or 0) > current]
        return Layout(
            projection.name,
            self.kind,
            found.read_index,
            found.write_indexes,
            max(newer, key=lambda name: names.generation_of(name) or 0) if newer else None,
            found.needs_rebuild,
            {
                "read_alias": found.read_alias,
                "stored_hash": found.stored_hash,
                "code_hash": found.code_hash,
            },
        )

    def begin_rebuild(self, projection: DocumentProjection) -> str:
        target = indexes.begin_rebuild(self.client, projection, self.prefix)
        self.carry_over(projection)
        return target

    def carry_over(self, projection: DocumentProjection) -> dict[str, Any]:
        layout = self.describe(projection)
        if layout.building is None or layout.read is None:
            return {}
        gone = self.missing_from_source if projection.keep_expired else None
        return carry_documents(self.client, projection, layout.read, layout.building, gone).to_json()

    def finish_rebuild(self, projection: DocumentProjection) -> str:
        self.carry_over(projection)
        return indexes.finish_rebuild(self.client, projection, self.prefix)

    def rollback(self, projection: DocumentProjection) -> str:
        return indexes.rollback(self.client, projection, self.prefix)

    def build_started_at(self, projection: DocumentProjection, build: str) -> float | None:
        found = self.client.indices.get_settings(index=build)
        return int(found[build]["settings"]["index"]["creation_date"]) / 1000
