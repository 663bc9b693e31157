"""Events as projections see them: read from a table item through its layout, upcast, then typed.

A projection names its event types as pydantic models (the type name is the model's ``event_type``
class attribute, else its class name). Reading an item can fail in ways that name the field: a missing
or non-numeric version, a stream id of the wrong shape, a payload that is not an object or that fails
its model. Those events are poison (dead-lettered whole); an unknown type is skipped or poison, as the
projection says.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, ValidationError

from projector.events.layout import EventLayout
from projector.exceptions import ProjectorError

M = TypeVar("M", bound=BaseModel)
Upcaster = Callable[[dict[str, Any]], tuple[str, dict[str, Any]]]
MAX_UPCASTS = 16


class EventError(ProjectorError, ValueError):
    """An event that cannot be read or typed; the message names the field."""

    def __init__(self, field: str, problem: str, *, prefixed: bool = True) -> None:
        super().__init__(f"{field}: {problem}" if prefixed else problem)
        self.field = field


@dataclass(frozen=True, slots=True)
class RecordedEvent:
    """One event as stored: stream id, version, type name, payload (numbers as Decimal), when recorded."""

    stream_id: str
    version: int
    type: str
    data: dict[str, Any]
    recorded_at: str | None = None


@dataclass(frozen=True, slots=True)
class Event(Generic[M]):
    """A typed event: ``data`` is the payload validated by the event type's model."""

    stream_id: str
    version: int
    type: str
    data: M
    recorded_at: str | None = None


def type_name(model: type[BaseModel]) -> str:
    return getattr(model, "event_type", None) or model.__name__


def read_version(item: Mapping[str, Any], layout: EventLayout) -> int:
    """The event's version: a whole number >= 1, or EventError naming the attribute."""
    name = layout.version_attribute
    value = item.get(name)
    if value is None:
        raise EventError(name, "missing (every event needs its version in the stream)")
    if isinstance(value, bool) or not isinstance(value, Decimal | int) or value != int(value):
        raise EventError(name, f"must be a whole number, got a {type(value).__name__}")
    number = int(value)
    if number < 1:
        raise EventError(name, f"must be 1 or more, got {number}")
    return number


def read_stream_id(item: Mapping[str, Any], layout: EventLayout) -> str:
    name = layout.stream_attribute
    value = item.get(name)
    if not isinstance(value, str) or not value:
        raise EventError(name, "missing or not a non-empty string")
    if layout.stream_id_pattern and not re.fullmatch(layout.stream_id_pattern, value):
        raise EventError(name, f"does not match {layout.stream_id_pattern!r}")
    return value


def recorded_event(item: Mapping[str, Any], layout: EventLayout) -> RecordedEvent:
    """Read a decoded table item (``projector.records.decode_image``) as an event of ``layout``."""
    stream_id = read_stream_id(item, layout)
    version = read_version(item, layout)
    raw_type = item.get(layout.type_attribute)
    if not isinstance(raw_type, str) or not raw_type:
        raise EventError(layout.type_attribute, "missing or not a non-empty string")
    event_type = raw_type.rsplit(":", 1)[-1] if layout.type_format == "topic" else raw_type
    data = _payload(item.get(layout.data_attribute), layout)
    recorded_at = None
    if layout.recorded_at_attribute:
        recorded_at = _recorded_at(item.get(layout.recorded_at_attribute), layout)
    return RecordedEvent(stream_id, version, event_type, data, recorded_at)


def _payload(value: Any, layout: EventLayout) -> dict[str, Any]:
    name = layout.data_attribute
    if value is None:
        raise EventError(name, "missing")
    if layout.payload == "map":
        if not isinstance(value, dict):
            raise EventError(name, f"must be a map, got a {type(value).__name__}")
        data = value
    else:
        if layout.payload == "json_bytes":
            if not isinstance(value, bytes | bytearray):
                raise EventError(name, f"must be binary JSON, got a {type(value).__name__}")
            try:
                value = bytes(value).decode("utf-8")
            except UnicodeDecodeError:
                raise EventError(name, "is not UTF-8 JSON") from None
        if not isinstance(value, str):
            raise EventError(name, f"must be a JSON string, got a {type(value).__name__}")
        try:
            data = json.loads(value, parse_float=Decimal)
        except ValueError:
            raise EventError(name, "is not valid JSON") from None
        if not isinstance(data, dict):
            raise EventError(name, "must hold a JSON object")
    return _untranscode(data) if layout.transcoded else data


def _untranscode(value: Any) -> Any:
    """The eventsourcing library's transcoder wraps custom types as {"_type_": T, "_data_": V}."""
    if isinstance(value, dict):
        if set(value) == {"_type_", "_data_"}:
            inner = _untranscode(value["_data_"])
            return Decimal(inner) if value["_type_"] == "decimal_str" else inner
        return {key: _untranscode(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_untranscode(item) for item in value]
    return value


def _recorded_at(value: Any, layout: EventLayout) -> str | None:
    if value is None:
        return None
    if layout.recorded_at_format == "epoch" and isinstance(value, Decimal | int | float):
        return datetime.fromtimestamp(float(value), UTC).isoformat().replace("+00:00", "Z")
    return str(value)


def error_text(error: ValidationError, prefix: str) -> str:
    """A validation error as field paths and reasons only: never the values (they are item contents)."""
    parts = []
    for entry in error.errors(include_input=False, include_url=False):
        location = ".".join(str(part) for part in (prefix, *entry["loc"]))
        parts.append(f"{location}: {entry['msg']}")
    return "; ".join(parts)


class EventCatalog:
    """A projection's event types, with upcasters from older shapes and the unknown-type rule."""

    def __init__(
        self,
        models: Iterable[type[BaseModel]],
        upcasters: Mapping[str, Upcaster] | None = None,
        unknown: str = "skip",
        data_field: str = "data",
    ) -> None:
        self.models: dict[str, type[BaseModel]] = {}
        for model in models:
            name = type_name(model)
            if name in self.models and self.models[name] is not model:
                raise ValueError(f"two event models are named {name!r}")
            self.models[name] = model
        self.upcasters = dict(upcasters or {})
        self.unknown = unknown
        self.data_field = data_field

    @property
    def names(self) -> list[str]:
        return sorted(self.models)

    def upcast(self, event: RecordedEvent) -> RecordedEvent:
        """Apply upcasters while one matches the event's type (a chain, bounded)."""
        current = event
        for _ in range(MAX_UPCASTS):
            upcaster = self.upcasters.get(current.type)
            if upcaster is None:
                return current
            try:
                new_type, new_data = upcaster(dict(current.data))
            except Exception as error:
                raise EventError(self.data_field, f"upcaster of {current.type!r} failed: {error}") from None
            if new_type == current.type and new_data == current.data:
                return current
            current = RecordedEvent(
                current.stream_id, current.version, new_type, new_data, current.recorded_at
            )
        raise EventError(self.data_field, f"more than {MAX_UPCASTS} upcasts of {event.type!r}: a loop?")

    def typed(self, event: RecordedEvent) -> Event[BaseModel] | None:
        """The typed event; None for an unknown type that is skipped (EventError when it is poison)."""
        event = self.upcast(event)
        model = self.models.get(event.type)
        if model is None:
            if self.unknown == "poison":
                raise EventError("type", f"unknown event type {event.type!r}")
            return None
        try:
            data = model.model_validate(event.data)
        except ValidationError as error:
            text = error_text(error, self.data_field)
            raise EventError(self.data_field, text, prefixed=False) from None
        return Event(event.stream_id, event.version, event.type, data, event.recorded_at)
