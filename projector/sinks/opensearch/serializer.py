"""JSON for OpenSearch that never rounds: a number is sent exactly as the item holds it, or not at all.

DynamoDB numbers arrive as ``Decimal``. JSON numbers are read by OpenSearch as longs or doubles, so a
Decimal is emitted as an int when it is integral and fits a long, as a float when the double's shortest
repr reads back as the same Decimal, and otherwise refused: a silently rounded amount in a search index
is a wrong answer nobody notices.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from projector.exceptions import ProjectorError
from projector.jsonsafe import base64_text

LONG_MIN = -(1 << 63)
LONG_MAX = (1 << 63) - 1


class SerializationError(ProjectorError, ValueError):
    """A value cannot be written as JSON without changing it."""


class InexactNumberError(SerializationError):
    """A number has no exact JSON long or double form."""

    def __init__(self, value: Decimal | float) -> None:
        self.value = value
        super().__init__(
            f"number {value} cannot be represented exactly in a JSON double; "
            "map it as keyword in the projection"
        )


def exact_number(value: Decimal) -> int | float:
    """The JSON number equal to ``value`` (int within long range, else a round-tripping double)."""
    if not value.is_finite():
        raise InexactNumberError(value)
    if value == value.to_integral_value():
        integral = int(value)
        if LONG_MIN <= integral <= LONG_MAX:
            return integral
    as_float = float(value)
    if math.isfinite(as_float) and Decimal(repr(as_float)) == value:
        return as_float
    raise InexactNumberError(value)


_EXACT: dict[Decimal, int | float] = {}
_EXACT_MAX = 1 << 16
_known = _EXACT.get  # the same dict for good: clear() empties it in place


def _exact_cached(value: Decimal) -> int | float:
    """exact_number, remembered: amounts, quantities and versions repeat a lot across documents."""
    if not value.is_finite():  # NaN, sNaN (unhashable) and infinities: refused by exact_number
        return exact_number(value)
    found = _EXACT.get(value)
    if found is None:
        found = exact_number(value)  # raises for an inexact one, which is never cached
        if len(_EXACT) >= _EXACT_MAX:
            _EXACT.clear()
        _EXACT[value] = found
    return found


def to_json(value: Any) -> Any:
    """``value`` with every Decimal, set and bytes turned into its exact JSON form."""
    kind = type(value)
    if kind is dict:  # the common shapes first, by exact type, without a call per str or known number
        out: dict[str, Any] = {}
        for key, item in value.items():
            if type(key) is not str:
                _key(key)
            item_kind = type(item)
            if item_kind is str or item is None or item_kind is bool:
                out[key] = item
            elif item_kind is Decimal:
                try:
                    found = _known(item)
                except TypeError:  # a signalling NaN cannot be hashed: _exact_cached refuses it
                    found = None
                out[key] = _exact_cached(item) if found is None else found
            else:
                out[key] = to_json(item)
        return out
    if kind is list:
        members: list[Any] = []
        append = members.append
        for item in value:
            item_kind = type(item)
            if item_kind is str:
                append(item)
            elif item_kind is Decimal:
                try:
                    found = _known(item)
                except TypeError:
                    found = None
                append(_exact_cached(item) if found is None else found)
            else:
                append(to_json(item))
        return members
    if kind is Decimal:
        return _exact_cached(value)
    if isinstance(value, str | bool) or value is None:
        return value
    if isinstance(value, Decimal):
        return exact_number(value)
    if isinstance(value, int):
        if not LONG_MIN <= value <= LONG_MAX:
            return exact_number(Decimal(value))
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise InexactNumberError(value)
        return value
    if isinstance(value, Mapping):
        return {_key(key): to_json(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [to_json(item) for item in value]
    if isinstance(value, set | frozenset):
        return [to_json(item) for item in _sorted(value)]
    if isinstance(value, bytes | bytearray | memoryview):
        return base64_text(value)
    raise SerializationError(f"cannot write a {type(value).__name__} as JSON: {value!r}")


_encode = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode  # built once


def dumps(value: Any) -> bytes:
    """Compact UTF-8 JSON of ``value`` after :func:`to_json`."""
    return _encode(to_json(value)).encode()


def _key(key: Any) -> str:
    if not isinstance(key, str):
        raise SerializationError(f"object keys must be strings, got {type(key).__name__}: {key!r}")
    return key


def _sorted(values: set[Any] | frozenset[Any]) -> list[Any]:
    try:
        return sorted(values)
    except TypeError:
        return sorted(values, key=lambda item: json.dumps(to_json(item), sort_keys=True))


def merge_objects(first: bytes, second: bytes) -> bytes:
    """Two serialised JSON objects with distinct keys as one, without encoding either again."""
    if second == b"{}":
        return first
    if first == b"{}":
        return second
    return first[:-1] + b"," + second[1:]
