"""Everything a process needs, built once: settings, projections, clients, stores, dead letters.

Lambda keeps one per execution environment (cold start); the CLI builds one per command. Clients and
stores are created on first use so a command that needs only DynamoDB never imports opensearch-py.
"""

from __future__ import annotations

import logging
import threading
from functools import cached_property
from typing import TYPE_CHECKING, Any

from projector.config.settings import Settings, load_settings
from projector.projection.registry import Registry, load_projections
from projector.stores.base import Connections
from projector.stores.kinds import kind_of, open_store

if TYPE_CHECKING:
    from projector.deadletters.store import DeadLetterStore
    from projector.pipeline.stream import StreamApplier
    from projector.projection.base import Projection
    from projector.stores.base import ProjectionStore

logger = logging.getLogger(__name__)


class Runtime:
    """The wired-up engine for one process."""

    def __init__(self, settings: Settings | None = None, registry: Registry | None = None) -> None:
        self.settings = settings or load_settings()
        self.registry = registry or load_projections(self.settings.projections)
        self._stores: dict[str, ProjectionStore[Any]] = {}
        self._stores_lock = threading.Lock()

    @cached_property
    def opensearch(self) -> Any:
        from projector.sinks.opensearch.client import opensearch_client

        return opensearch_client(self.settings)

    @cached_property
    def dynamodb(self) -> Any:
        from projector.clients import dynamodb_client

        return dynamodb_client(self.settings)

    def store_for(self, projection: Projection) -> ProjectionStore[Any]:
        """The store of ``projection``'s kind: one per kind, created on first use, kept as long as the
        runtime (a warm Lambda container), so a store's memory of stored states outlives a batch."""
        kind = kind_of(projection)
        with self._stores_lock:
            store = self._stores.get(kind)
            if store is None:
                store = self._stores[kind] = open_store(kind, self._connections())
        return store

    def _connections(self) -> Connections:
        return Connections(
            settings=self.settings,
            opensearch=lambda: self.opensearch,
            dynamodb=lambda: self.dynamodb,
            missing_from_source=self._missing_from_source,
        )

    def _missing_from_source(self, item_ids: list[str]) -> set[str]:
        """The ones of ``item_ids`` not in the source table (consistent reads)."""
        from projector.source.items import Source

        found = Source.of(self.dynamodb, self.settings.source_table, 1).get(item_ids)
        return {item_id for item_id in item_ids if item_id not in found}

    @cached_property
    def dead_letters(self) -> DeadLetterStore:
        from projector.deadletters.store import open_store as open_dead_letters

        return open_dead_letters(self.settings)

    @cached_property
    def stream_applier(self) -> StreamApplier:
        from projector.pipeline.stream import StreamApplier

        return StreamApplier(self.registry.all, self.store_for, self.dead_letters)
