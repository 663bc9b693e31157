"""The writers behind the stores: batching, versioned writes, retries. No domain logic."""

from __future__ import annotations

from projector.sinks.base import ItemChanges, Sink, SinkResult

__all__ = ["ItemChanges", "Sink", "SinkResult"]
