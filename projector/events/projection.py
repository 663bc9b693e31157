"""Projections over an events table: one search document per stream, and aggregates of events.

``EventStreamProjection`` is a search projection (index, aliases, search, rebuild and rollback as for
any ``DocumentProjection``) whose document is the fold of its stream: ``initial(stream_id)`` and one
handler per event type, ``handler(state, event) -> state`` (``None`` ends the document: a tombstone).
The event sink folds it; its ``document`` callable is never used.

``EventAggregateProjection`` is an ``AggregateProjection`` keyed by (stream id, version): each event is
an immutable item whose contribution is fixed, so the aggregate machinery keeps it exact under
duplicates, replays and redrives. ``groups(event)`` gets the typed event; measures read its payload.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from decimal import Decimal
from typing import Any, Literal

from pydantic import BaseModel, Field, PrivateAttr, model_validator

from projector.events.layout import EventLayout, projector_preset
from projector.events.types import (
    Event,
    EventCatalog,
    EventError,
    Upcaster,
    read_stream_id,
    recorded_event,
    type_name,
)
from projector.projection.base import AggregateProjection, AttributeVersion, DocumentProjection, Item

Handler = Callable[[dict[str, Any], Event[Any]], dict[str, Any] | None]
UnknownRule = Literal["skip", "poison"]


def _unused_document(item: Item) -> dict[str, Any] | None:
    raise TypeError("an event stream projection is folded by the event sink, not rendered per item")


def keyed_by_layout(data: Any, keys: str = "table") -> Any:
    """Key attributes and version policy come from the layout: (stream id, version) for an aggregate
    (each event is an item); for a stream document the default key is the stream id field."""
    if isinstance(data, dict):
        layout = data.get("layout") or projector_preset()
        if isinstance(layout, dict):
            layout = EventLayout.model_validate(layout)
        data = {**data, "layout": layout}
        default = layout.key_attributes if keys == "table" else (layout.stream_attribute,)
        data.setdefault("key_attributes", default)
        data.setdefault("version", AttributeVersion(attribute=layout.version_attribute))
    return data


class _EventSource:
    """What both event projection kinds share: the layout, the category and the event catalog."""

    layout: EventLayout
    category: str | None
    unknown_events: UnknownRule
    _catalog: EventCatalog

    def takes(self, stream_id: str, event_type: str) -> bool:
        """Whether a stream belongs to this projection (its category, when the projection names one)."""
        if self.category is None:
            return True
        return self.layout.category_of(stream_id, event_type) == self.category

    def check_stream_id(self, stream_id: str) -> None:
        """A stream id this projection cannot place is poison (wrong shape), not another category."""
        if (
            self.category is not None
            and self.layout.category_separator is not None
            and self.layout.category_separator not in stream_id
        ):
            raise EventError(
                self.layout.stream_attribute,
                f"has no category prefix ('{self.category}{self.layout.category_separator}...')",
            )

    def typed_event(self, item: Item) -> Event[Any] | None:
        """The item as a typed event of this projection; None when it is not this projection's (category,
        or an unknown type that is skipped). EventError for bad input, naming the field."""
        recorded = recorded_event(item, self.layout)
        self.check_stream_id(recorded.stream_id)
        if not self.takes(recorded.stream_id, recorded.type):
            return None
        return self._catalog.typed(recorded)

    @property
    def catalog(self) -> EventCatalog:
        return self._catalog

    def _event_definition(self) -> dict[str, Any]:
        """What both kinds add to ``definition()``: a change to any of it changes what is written."""
        return {
            "layout": self.layout.model_dump(),
            "category": self.category,
            "event_types": self._catalog.names,
            "unknown_events": self.unknown_events,
        }


class EventStreamProjection(_EventSource, DocumentProjection):
    """One search document per stream: the fold of its events, versioned by the stream version."""

    kind: Literal["event_stream"] = "event_stream"  # type: ignore[assignment]
    layout: EventLayout = Field(default_factory=projector_preset)
    category: str | None = None
    events: tuple[type[BaseModel], ...] = ()
    handlers: Mapping[Any, Handler]
    initial: Callable[[str], dict[str, Any]]
    upcasters: Mapping[str, Upcaster] = Field(default_factory=dict)
    unknown_events: UnknownRule = "skip"
    document_id: Callable[[str], str] | None = None
    version_field: str | None = None  # a document field the engine sets to the stream version folded
    document: Callable[[Item], dict[str, Any] | None] = _unused_document
    _catalog: EventCatalog = PrivateAttr()
    _handlers: dict[str, Handler] = PrivateAttr()

    @model_validator(mode="before")
    @classmethod
    def _keys(cls, data: Any) -> Any:
        # key_attributes of a stream document: the document field(s) unique per stream (search pages by it)
        return keyed_by_layout(data, keys="document")

    def source_key(self) -> tuple[str, ...]:
        # key_attributes name the document's own key field; the events table is keyed by the layout
        return self.layout.key_attributes

    @model_validator(mode="after")
    def _build_catalog(self) -> EventStreamProjection:
        handlers: dict[str, Handler] = {}
        models = list(self.events)
        for key, handler in self.handlers.items():
            if isinstance(key, type) and issubclass(key, BaseModel):
                models.append(key)
                handlers[type_name(key)] = handler
            elif isinstance(key, str):
                handlers[key] = handler
            else:
                raise ValueError(f"handlers are keyed by event model or type name, got {key!r}")
        self._catalog = EventCatalog(
            dict.fromkeys(models), self.upcasters, self.unknown_events, self.layout.data_attribute
        )
        missing = sorted(set(handlers) - set(self._catalog.models))
        if missing:
            raise ValueError(f"handlers name event types without a model: {missing}")
        self._handlers = handlers
        return self

    def item_id(self, keys: Item) -> str:
        """Changes are grouped per stream (the version is the order within it, not an identity)."""
        value = keys.get(self.layout.stream_attribute)
        return value if isinstance(value, str) else ""

    def doc_id(self, stream_id: str) -> str:
        """The stream's document ``_id``; one over OpenSearch's 512 bytes becomes its stable digest."""
        from projector.projection.document_ids import document_id

        return document_id(self.document_id(stream_id) if self.document_id else stream_id)

    def handler(self, event_type: str) -> Handler | None:
        return self._handlers.get(event_type)

    def definition(self) -> dict[str, Any]:
        return {**super().definition(), **self._event_definition()}


class EventAggregateProjection(_EventSource, AggregateProjection):
    """Counts and sums over events: ``groups(event)`` names the groups a typed event contributes to."""

    layout: EventLayout = Field(default_factory=projector_preset)
    category: str | None = None
    events: tuple[type[BaseModel], ...] = Field(min_length=1)
    upcasters: Mapping[str, Upcaster] = Field(default_factory=dict)
    unknown_events: UnknownRule = "skip"
    groups: Callable[[Event[Any]], Iterable[str]]  # type: ignore[assignment]  # events, not items
    # An expired event (TTL archiving) still happened: it keeps its contribution.
    keep_expired: bool = True
    _catalog: EventCatalog = PrivateAttr()

    @model_validator(mode="before")
    @classmethod
    def _keys(cls, data: Any) -> Any:
        return keyed_by_layout(data)

    @model_validator(mode="after")
    def _build_catalog(self) -> EventAggregateProjection:
        self._catalog = EventCatalog(
            self.events, self.upcasters, self.unknown_events, self.layout.data_attribute
        )
        return self

    def contributions(self, item: Item) -> dict[str, dict[str, Decimal]]:
        event = self.typed_event(item)
        if event is None:
            return {}
        groups = list(self.groups(event))
        if not groups:
            return {}
        payload = event.data.model_dump()
        values = {name: measure.value(payload) for name, measure in self.measures.items()}
        result: dict[str, dict[str, Decimal]] = {}
        for group in groups:
            if not isinstance(group, str) or not group:
                raise ValueError(f"group keys must be non-empty strings, got {group!r}")
            result[group] = dict(values)
        return result

    def definition(self) -> dict[str, Any]:
        return {**super().definition(), **self._event_definition()}


def stream_id_of(projection: EventStreamProjection | EventAggregateProjection, item: Item) -> str:
    return read_stream_id(item, projection.layout)


def event_projections(projections: Iterable[Any]) -> list[EventStreamProjection | EventAggregateProjection]:
    """The event projections among ``projections`` (a registry's ``all``)."""
    return [p for p in projections if isinstance(p, EventStreamProjection | EventAggregateProjection)]


def layout_for(projections: Iterable[Any]) -> EventLayout | None:
    """The one layout the event projections of a registry share (None without any); they read one table."""
    layouts = {p.layout for p in event_projections(projections)}
    if len(layouts) > 1:
        from projector.config.exceptions import ConfigurationError

        raise ConfigurationError(
            "the event projections declare different event layouts, but they read one source table"
        )
    return next(iter(layouts), None)
