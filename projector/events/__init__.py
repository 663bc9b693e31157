"""Event-sourced projections: fold the streams of an events table into exact read models.

An events table holds one item per event (partition key = stream id, sort key = version, append only).
``EventStreamProjection`` keeps one search document per stream equal to the fold of its events;
``EventAggregateProjection`` sums events exactly; ``EventStore`` appends with version checks and reads
streams. See docs/events.md.
"""

from __future__ import annotations

from projector.events.layout import EventLayout, eventsourcing_preset, preset, projector_preset
from projector.events.projection import EventAggregateProjection, EventStreamProjection
from projector.events.store import AppendError, ConcurrencyError, EventStore, NewEvent
from projector.events.types import Event, EventError, RecordedEvent

__all__ = [
    "AppendError",
    "ConcurrencyError",
    "Event",
    "EventAggregateProjection",
    "EventError",
    "EventLayout",
    "EventStore",
    "EventStreamProjection",
    "NewEvent",
    "RecordedEvent",
    "eventsourcing_preset",
    "preset",
    "projector_preset",
]
