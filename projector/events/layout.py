"""Where an events table keeps each part of an event: declared once, shared by every reader and writer.

An events table holds one item per event: partition key = stream id, sort key = the event's version in
its stream (1, 2, 3 ...), items only ever appended. The layout names those attributes, how the payload is
stored (a DynamoDB map, a JSON string or JSON bytes) and how a stream's category is found, so one table
can hold several aggregate types and each projection takes only its own.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

PayloadFormat = Literal["map", "json_string", "json_bytes"]


class EventLayout(BaseModel):
    """Attribute names and payload format of an events table (see the presets below)."""

    model_config = ConfigDict(frozen=True)

    preset: str = "custom"
    stream_attribute: str = "stream_id"
    version_attribute: str = "version"
    type_attribute: str = "type"
    data_attribute: str = "data"
    recorded_at_attribute: str | None = "recorded_at"
    recorded_at_format: Literal["iso", "epoch"] = "iso"
    payload: PayloadFormat = "map"
    # "topic": the type attribute holds a Python topic ``module:Class.Event`` (the eventsourcing library);
    # the event type is then ``Class.Event`` and the category ``Class``.
    type_format: Literal["name", "topic"] = "name"
    # The category of a stream: the part of the stream id before this separator (None: no category from
    # the stream id; with type_format "topic" it comes from the topic).
    category_separator: str | None = "-"
    # Values the eventsourcing library's JSON transcoder wraps as {"_type_": T, "_data_": V}, unwrapped.
    transcoded: bool = False
    stream_id_pattern: str | None = Field(
        default=None, description="a regular expression every stream id must match (bad ids are poison)"
    )

    @model_validator(mode="after")
    def _distinct(self) -> EventLayout:
        names = [self.stream_attribute, self.version_attribute, self.type_attribute, self.data_attribute]
        if self.recorded_at_attribute:
            names.append(self.recorded_at_attribute)
        if len(set(names)) != len(names):
            raise ValueError(f"event layout attributes must be distinct: {names}")
        return self

    @property
    def key_attributes(self) -> tuple[str, str]:
        return (self.stream_attribute, self.version_attribute)

    def category_of(self, stream_id: str, event_type: str | None = None) -> str | None:
        """The stream's category: the stream id's prefix, or the aggregate class of a topic."""
        if self.category_separator is not None:
            head, found, _ = stream_id.partition(self.category_separator)
            return head if found else None
        if self.type_format == "topic" and event_type and "." in event_type:
            return event_type.rsplit(".", 1)[0]
        return None

    def table_definition(self) -> dict[str, Any]:
        """CreateTable arguments for the key schema: stream id (S, partition key), version (N, sort key)."""
        return {
            "AttributeDefinitions": [
                {"AttributeName": self.stream_attribute, "AttributeType": "S"},
                {"AttributeName": self.version_attribute, "AttributeType": "N"},
            ],
            "KeySchema": [
                {"AttributeName": self.stream_attribute, "KeyType": "HASH"},
                {"AttributeName": self.version_attribute, "KeyType": "RANGE"},
            ],
        }


def projector_preset() -> EventLayout:
    """The default: ``stream_id`` (S), ``version`` (N), ``type`` (S), ``data`` (M), ``recorded_at`` (ISO)."""
    return EventLayout(preset="projector")


def eventsourcing_preset() -> EventLayout:
    """The items the ``eventsourcing`` library writes through ``eventsourcing-dynamodb``.

    ``originator_id`` (S, a UUID), ``originator_version`` (N), ``topic`` (S, ``module:Class.Event``),
    ``state`` (B: JSON bytes from its default transcoder), ``created_at`` (N, epoch seconds). A stream's
    category is the aggregate class named by the topic.
    """
    return EventLayout(
        preset="eventsourcing",
        stream_attribute="originator_id",
        version_attribute="originator_version",
        type_attribute="topic",
        data_attribute="state",
        recorded_at_attribute="created_at",
        recorded_at_format="epoch",
        payload="json_bytes",
        type_format="topic",
        category_separator=None,
        transcoded=True,
    )


PRESETS = {"projector": projector_preset, "eventsourcing": eventsourcing_preset}


def preset(name: str) -> EventLayout:
    """A preset layout by name (``projector`` or ``eventsourcing``)."""
    try:
        return PRESETS[name]()
    except KeyError:
        raise ValueError(f"unknown event layout preset {name!r}; known: {', '.join(PRESETS)}") from None
