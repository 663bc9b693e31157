"""Everything a process needs, built once: settings, projections, clients, sinks, dead letters.

Lambda keeps one per execution environment (cold start); the CLI builds one per command. Clients are
created on first use so a command that needs only DynamoDB never imports opensearch-py.
"""

from __future__ import annotations

import logging
from functools import cached_property
from typing import TYPE_CHECKING, Any

from projector.config.settings import Settings, load_settings
from projector.projection.registry import Registry, load_projections

if TYPE_CHECKING:
    from projector.deadletters.store import DeadLetterStore
    from projector.pipeline.stream import StreamApplier
    from projector.projection.base import Projection
    from projector.sinks.aggregates.writer import AggregateSink
    from projector.sinks.base import Sink
    from projector.sinks.opensearch.writer import OpenSearchSink

logger = logging.getLogger(__name__)


class Runtime:
    """The wired-up engine for one process."""

    def __init__(self, settings: Settings | None = None, registry: Registry | None = None) -> None:
        self.settings = settings or load_settings()
        self.registry = registry or load_projections(self.settings.projections)

    @cached_property
    def opensearch(self) -> Any:
        from projector.sinks.opensearch.client import opensearch_client

        return opensearch_client(self.settings)

    @cached_property
    def dynamodb(self) -> Any:
        from projector.clients import dynamodb_client

        return dynamodb_client(self.settings)

    @cached_property
    def document_sink(self) -> OpenSearchSink | None:
        if not self.registry.documents:
            return None
        from projector.sinks.opensearch.known import KnownStates
        from projector.sinks.opensearch.writer import OpenSearchSink

        # the sink lives as long as the runtime (a warm Lambda container): it remembers stored states
        return OpenSearchSink(self.opensearch, self.settings, known=KnownStates())

    @cached_property
    def aggregate_sink(self) -> AggregateSink | None:
        if not self.registry.aggregates:
            return None
        from projector.sinks.aggregates.writer import AggregateSink

        return AggregateSink(self.dynamodb, self.settings)

    @cached_property
    def event_sink(self) -> Any:
        """events hook: the sink folding event streams (None without event stream projections)."""
        if not any(getattr(p, "kind", None) == "event_stream" for p in self.registry.documents):
            return None
        from projector.events.sink import EventStreamSink

        return EventStreamSink(self.opensearch, self.dynamodb, self.settings)

    @cached_property
    def dead_letters(self) -> DeadLetterStore:
        from projector.deadletters.store import open_store

        return open_store(self.settings)

    def store_for(self, projection: Projection) -> Sink[Any]:
        """The store a projection's changes go to (interim: the coordinator wires the stores' version)."""
        if getattr(projection, "kind", None) == "event_stream":  # events hook
            sink = self.event_sink
        else:
            from projector.projection.base import DocumentProjection

            sink = self.document_sink if isinstance(projection, DocumentProjection) else self.aggregate_sink
        if sink is None:
            raise RuntimeError(f"no store configured for projection {projection.name!r}")
        return sink  # type: ignore[no-any-return]  # event_sink is untyped until the stores land

    @cached_property
    def stream_applier(self) -> StreamApplier:
        from projector.pipeline.stream import StreamApplier

        return StreamApplier(self.registry.all, self.store_for, self.dead_letters)
