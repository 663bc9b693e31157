"""Sinks own all I/O to the projections' stores: batching, versioned writes, retries. No domain logic."""

from __future__ import annotations

from projector.sinks.base import ItemChanges, Sink, SinkResult

__all__ = ["ItemChanges", "Sink", "SinkResult"]
