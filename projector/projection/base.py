"""Projection definitions: pure mappings from an item to a document or to aggregate contributions.

A projection never talks to a server. The engine hands it decoded items (``Decimal`` numbers) and turns
its answers into versioned writes, so a new projection touches nothing but its own module.
"""

from __future__ import annotations

import decimal
import hashlib
import json
import re
from collections.abc import Callable, Iterable, Mapping
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from projector.config.exceptions import ConfigurationError

Item = dict[str, Any]

_NAME = re.compile(r"^[a-z][a-z0-9_]{0,62}$")
ATTRIBUTE_VERSION_BITS = 39
# An aggregate row holds its keys (pk, sk) beside the measures; `projector aggregate` prints name and key.
RESERVED_MEASURE_NAMES = frozenset({"pk", "sk", "name", "key"})
# Sums a projection's per-group values exactly (the same rule as the aggregates' numbers: never round;
# whether a total can be stored is the sink's check). Kept here so the projection API imports no store.
_EXACT = decimal.Context(
    prec=400,
    Emin=-999_999,
    Emax=999_999,
    traps=[decimal.InvalidOperation, decimal.Overflow, decimal.Inexact, decimal.Rounded],
)


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
    """Sums a number over the items in a group, in Decimal; ``places`` fixes the display.

    With ``groups=`` the number is the item's ``attribute``; with ``group_values=`` the projection gives
    it per group and ``attribute`` stays unset. ``integer=True`` prints the sum as an int (``units``)
    and refuses a value with a fractional part (that item's change is poison).
    """

    model_config = ConfigDict(frozen=True)
    kind: Literal["sum"] = "sum"
    attribute: str | None = None
    places: int = Field(default=2, ge=0, le=10)
    integer: bool = False

    def value(self, item: Item) -> Decimal:
        raw = item.get(self.attribute) if self.attribute is not None else None
        if not isinstance(raw, Decimal):
            raise ValueError(f"attribute {self.attribute!r} must be a number, got {type(raw).__name__}")
        return self.checked(raw, f"attribute {self.attribute!r}")

    def checked(self, value: Decimal, what: str) -> Decimal:
        """``value`` when this sum can hold it: finite, and whole for an ``integer`` sum."""
        if not value.is_finite():
            raise ValueError(f"{what} must be a finite number")
        if self.integer and value != value.to_integral_value():
            raise ValueError(f"{what} must be a whole number (the sum is an integer measure)")
        return value

    def behaviour(self) -> dict[str, Any]:
        behaviour: dict[str, Any] = {"kind": self.kind, "attribute": self.attribute}
        if self.integer:  # refuses fractions, so it changes what is written; only when set (stable hashes)
            behaviour["integer"] = True
        return behaviour  # ``places`` only formats the output


Measure = Annotated[Count | Sum, Field(discriminator="kind")]


GroupValues = Mapping[str, Mapping[str, Any]] | Iterable[tuple[str, Mapping[str, Any]]]
"""What ``group_values(item)`` returns: ``{group: {sum_measure: value}}``, or ``(group, values)`` pairs."""


class AggregateProjection(Projection):
    """Counts and sums per group over the live items; give exactly one of ``groups`` or ``group_values``.

    ``groups(item)`` names the groups a live item contributes to; each gets the same measures (1 per
    ``Count``, the ``Sum``'s attribute). ``group_values(item)`` gives each group its own values, e.g.
    units and revenue per SKU from an order's lines::

        AggregateProjection(
            name="product_sales",
            key_attributes=("order_id",),
            group_name="sku",
            measures={"units": Sum(integer=True), "revenue": Sum(places=2)},
            group_values=lambda order: [
                (line["sku"], {"units": line["qty"], "revenue": line["qty"] * line["price"]})
                for line in order["items"]
            ],
        )

    Pairs naming the same group are summed exactly (two lines of one SKU). Values are ``Decimal`` or
    ``int`` (floats are refused), only for ``Sum`` measures (a missing one adds 0); a ``Count`` adds 1
    to each group the item names. A bad answer makes that item's change poison, as any projection error.
    """

    kind: Literal["aggregate"] = "aggregate"
    group_name: str = "key"
    measures: dict[str, Measure] = Field(min_length=1)
    groups: Callable[[Item], Iterable[str]] | None = None
    group_values: Callable[[Item], GroupValues] | None = None

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

    @model_validator(mode="after")
    def _one_source_of_values(self) -> AggregateProjection:
        if (self.groups is None) == (self.group_values is None):
            raise ValueError("give exactly one of groups= (same measures per group) or group_values=")
        sums = {name: m for name, m in self.measures.items() if isinstance(m, Sum)}
        if self.group_values is not None:
            wrong = sorted(name for name, m in sums.items() if m.attribute is not None)
            if wrong:
                raise ValueError(
                    f"sum measures {wrong} name an attribute, but group_values= gives their values: "
                    "leave attribute unset"
                )
        else:
            wrong = sorted(name for name, m in sums.items() if m.attribute is None)
            if wrong:
                raise ValueError(f"sum measures {wrong} need an attribute (or use group_values=)")
        return self

    def contributions(self, item: Item) -> dict[str, dict[str, Decimal]]:
        """The measures this item adds to each of its groups."""
        if self.group_values is not None:
            return self._given_contributions(item)
        assert self.groups is not None  # the validator guarantees one of the two
        values = {name: measure.value(item) for name, measure in self.measures.items()}
        result: dict[str, dict[str, Decimal]] = {}
        for group in self.groups(item):
            _check_group(group)
            result[group] = dict(values)
        return result

    def _given_contributions(self, item: Item) -> dict[str, dict[str, Decimal]]:
        """``group_values(item)`` checked against the measures, pairs of one group summed exactly."""
        assert self.group_values is not None
        answer = self.group_values(item)
        pairs = answer.items() if isinstance(answer, Mapping) else answer
        counts = [name for name, measure in self.measures.items() if isinstance(measure, Count)]
        result: dict[str, dict[str, Decimal]] = {}
        for pair in pairs:
            if not isinstance(pair, tuple | list) or len(pair) != 2:
                raise ValueError(
                    "group_values must return {group: {measure: value}} or (group, values) pairs"
                )
            group, values = pair
            _check_group(group)
            if not isinstance(values, Mapping):
                raise ValueError(
                    f"the values of a group must be a mapping of measure names, got {type(values).__name__}"
                )
            totals = result.setdefault(group, {name: Decimal(1) for name in counts})
            for name, raw in values.items():
                measure = self.measures.get(name)
                if measure is None:
                    raise ValueError(
                        f"group_values names an unknown measure {name!r}; measures: {sorted(self.measures)}"
                    )
                if not isinstance(measure, Sum):
                    raise ValueError(
                        f"measure {name!r} is a Count: it adds 1 per group, group_values cannot set it"
                    )
                value = measure.checked(_decimal(raw, name), f"measure {name!r}")
                totals[name] = _EXACT.add(totals.get(name, Decimal(0)), value)
        for totals in result.values():
            for name in self.measures:
                totals.setdefault(name, Decimal(0))
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


def _check_group(group: Any) -> None:
    if not isinstance(group, str) or not group:
        got = "an empty string" if group == "" else type(group).__name__
        raise ValueError(f"group keys must be non-empty strings, got {got}")


def _decimal(value: Any, name: str) -> Decimal:
    """A per-group value as an exact Decimal: Decimal or int only (a float has already lost digits)."""
    if isinstance(value, Decimal):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return Decimal(value)
    raise ValueError(
        f"measure {name!r} needs a Decimal or int, got {type(value).__name__}"
        + (" (floats are refused: they are not exact)" if isinstance(value, float) else "")
    )


def _key_text(value: Any) -> str:
    if isinstance(value, bytes):
        return value.hex()
    return str(value)
