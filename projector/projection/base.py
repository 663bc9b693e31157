"""Projection definitions: pure mappings from an item to a document or to aggregate contributions.

A projection never talks to a server. The engine hands it decoded items (``Decimal`` numbers) and turns
its answers into versioned writes, so a new projection touches nothing but its own module.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Iterable
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from projector.config.exceptions import ConfigurationError

Item = dict[str, Any]

_NAME = re.compile(r"^[a-z][a-z0-9_]{0,62}$")
ATTRIBUTE_VERSION_BITS = 39
# An aggregate row holds its keys (pk, sk) beside the measures; `projector aggregate` prints name and key.
RESERVED_MEASURE_NAMES = frozenset({"pk", "sk", "name", "key"})


class AttributeVersion(BaseModel):
    """Order changes by a number attribute that writers increment on every write (``version``)."""

    model_config = ConfigDict(frozen=True)
    mode: Literal["attribute"] = "attribute"
    attribute: str = "version"


class StreamPositionVersion(BaseModel):
    """Order changes by their stream position, for tables without a version attribute.

    The order key comes from the record itself (ApproximateCreationDateTime, SequenceNumber), so it
    survives restarts; see the README for the exact guarantee and its limit.
    """

    model_config = ConfigDict(frozen=True)
    mode: Literal["stream"] = "stream"


VersionPolicy = Annotated[AttributeVersion | StreamPositionVersion, Field(discriminator="mode")]


class Projection(BaseModel):
    """What every projection has: a name, the source table's key attributes and a version policy."""

    model_config = ConfigDict(frozen=True, arbitrary_types_allowed=True)

    name: str
    key_attributes: tuple[str, ...] = Field(min_length=1, max_length=2)
    version: VersionPolicy = AttributeVersion()
    keep_expired: bool = False
    revision: int = Field(
        default=1, ge=1, description="bump when the mapping logic changes, to flag a rebuild"
    )

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not _NAME.match(value):
            raise ValueError(f"projection names are lowercase [a-z0-9_], starting with a letter: {value!r}")
        return value

    def source_key(self) -> tuple[str, ...]:
        """The source table's key attributes this projection expects (checked at setup and cold start)."""
        return tuple(self.key_attributes)

    def item_id(self, keys: Item) -> str:
        """The stable id of a source item: its key value, or a JSON pair for a composite key."""
        try:
            if len(self.key_attributes) == 1:
                return _key_text(keys[self.key_attributes[0]])
            return json.dumps([_key_text(keys[name]) for name in self.key_attributes], separators=(",", ":"))
        except KeyError:
            raise ConfigurationError(
                f"projection {self.name!r} has key_attributes {tuple(self.key_attributes)!r}, but the "
                f"record's key holds {tuple(sorted(keys))!r}: key_attributes must be the source table's key"
            ) from None

    def definition(self) -> dict[str, Any]:
        """What a stored build is compared with to tell whether it needs a rebuild: everything that changes
        what is written (keys, version policy, keep_expired, mappings, measures), nothing display-only."""
        definition: dict[str, Any] = {
            "name": self.name,
            "keys": list(self.key_attributes),
            "version": self.version.model_dump(),
            "revision": self.revision,
        }
        if self.keep_expired:  # only when set, so definitions hashed before it was covered keep their hash
            definition["keep_expired"] = True
        return definition

    def definition_hash(self) -> str:
        text = json.dumps(self.definition(), sort_keys=True, default=str)
        return hashlib.sha256(text.encode()).hexdigest()[:16]


class DocumentProjection(Projection):
    """One search document per item: ``document(item)`` returns the body, or None to keep it out."""

    kind: Literal["document"] = "document"
    mappings: dict[str, Any]
    settings: dict[str, Any] = Field(default_factory=dict)
    text_fields: tuple[str, ...] = ()
    document: Callable[[Item], dict[str, Any] | None]

    @field_validator("mappings")
    @classmethod
    def _mappings(cls, value: dict[str, Any]) -> dict[str, Any]:
        if "properties" not in value or not isinstance(value["properties"], dict):
            raise ValueError("mappings needs a 'properties' object (explicit types: no dynamic guessing)")
        reserved = sorted(name for name in value["properties"] if str(name).startswith("_"))
        if reserved:
            raise ValueError(
                f"mapped fields {reserved} are reserved: a leading underscore belongs to projector's meta "
                "field (_projector) and OpenSearch's metadata fields (_id, _source, _routing, ...)"
            )
        if value.get("dynamic", "strict") != "strict":
            raise ValueError(
                "mappings must be dynamic: strict (an unmapped field is a poison record, not a guess)"
            )
        return {**value, "dynamic": "strict"}

    @model_validator(mode="after")
    def _text_fields_are_text(self) -> DocumentProjection:
        for field in self.text_fields:
            mapped = field_mapping(self.mappings, field)
            if mapped is None or mapped.get("type") != "text":
                raise ValueError(f"text field {field!r} must be mapped with type 'text'")
        return self

    def definition(self) -> dict[str, Any]:
        return {
            **super().definition(),
            "mappings": self.mappings,
            "settings": self.settings,
            "text_fields": list(self.text_fields),
        }


class Count(BaseModel):
    """Counts the items in a group."""

    model_config = ConfigDict(frozen=True)
    kind: Literal["count"] = "count"

    def value(self, item: Item) -> Decimal:
        return Decimal(1)

    def behaviour(self) -> dict[str, Any]:
        """What changes the stored numbers (hashed for "needs rebuild"); display options are left out."""
        return {"kind": self.kind}


class Sum(BaseModel):
    """Sums a number attribute over the items in a group, in Decimal; ``places`` fixes the display."""

    model_config = ConfigDict(frozen=True)
    kind: Literal["sum"] = "sum"
    attribute: str
    places: int = Field(default=2, ge=0, le=10)

    def value(self, item: Item) -> Decimal:
        raw = item.get(self.attribute)
        if not isinstance(raw, Decimal):
            raise ValueError(f"attribute {self.attribute!r} must be a number, got {type(raw).__name__}")
        return raw

    def behaviour(self) -> dict[str, Any]:
        return {"kind": self.kind, "attribute": self.attribute}  # ``places`` only formats the output


Measure = Annotated[Count | Sum, Field(discriminator="kind")]


class AggregateProjection(Projection):
    """Counts and sums per group: ``groups(item)`` names the groups a live item contributes to."""

    kind: Literal["aggregate"] = "aggregate"
    group_name: str = "key"
    measures: dict[str, Measure] = Field(min_length=1)
    groups: Callable[[Item], Iterable[str]]

    @field_validator("measures")
    @classmethod
    def _measure_names(cls, value: dict[str, Any]) -> dict[str, Any]:
        for name in value:
            if not _NAME.match(name):
                raise ValueError(f"measure names are lowercase [a-z0-9_]: {name!r}")
        clash = sorted(RESERVED_MEASURE_NAMES & value.keys())
        if clash:
            raise ValueError(
                f"measure names {clash} are reserved: the aggregate row's keys (pk, sk) and the fields "
                "printed beside the measures (name, key)"
            )
        return value

    def contributions(self, item: Item) -> dict[str, dict[str, Decimal]]:
        """The measures this item adds to each of its groups."""
        values = {name: measure.value(item) for name, measure in self.measures.items()}
        result: dict[str, dict[str, Decimal]] = {}
        for group in self.groups(item):
            if not isinstance(group, str) or not group:
                raise ValueError(f"group keys must be non-empty strings, got {group!r}")
            result[group] = dict(values)
        return result

    def definition(self) -> dict[str, Any]:
        return {
            **super().definition(),
            "measures": {name: measure.behaviour() for name, measure in self.measures.items()},
        }


def field_mapping(mappings: dict[str, Any], dotted: str) -> dict[str, Any] | None:
    """The mapping of a dotted field path (``items.title``), following object and nested properties."""
    node: dict[str, Any] | None = mappings
    for part in dotted.split("."):
        properties = (node or {}).get("properties", {})
        node = properties.get(part)
        if node is None:
            return None
    return node


def _key_text(value: Any) -> str:
    if isinstance(value, bytes):
        return value.hex()
    return str(value)
