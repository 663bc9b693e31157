"""DynamoDB JSON to Python values, fast: the decoder runs on every image of every record.

A dict dispatch on the type tag, plain loops, no exceptions and no regexes on the happy path. Error paths
are collected only while an error unwinds. Numbers become ``Decimal`` through DynamoDB's own 38-digit
context with every lossy signal trapped, so a value that cannot be held exactly is an error, never a float.
"""

from __future__ import annotations

import binascii
import decimal
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from projector.records.exceptions import DecodeError

__all__ = ["DYNAMODB_CONTEXT", "check_image", "decode_image", "decode_value"]

#: DynamoDB's number limits (the same bounds boto3 uses); every signal that would lose information is trapped.
DYNAMODB_CONTEXT = decimal.Context(
    prec=38,
    rounding=decimal.ROUND_HALF_EVEN,
    Emin=-128,
    Emax=126,
    traps=[
        decimal.InvalidOperation,
        decimal.Inexact,
        decimal.Rounded,
        decimal.Overflow,
        decimal.Underflow,
        decimal.Clamped,
    ],
)
_create_decimal = DYNAMODB_CONTEXT.create_decimal
_a2b_base64 = binascii.a2b_base64
_Decoder = Callable[[Any], Any]


def _shape(value: Any) -> str:
    """What a bad value looks like without the value itself: messages end up in logs."""
    if isinstance(value, str | bytes | list | dict):
        unit = "character" if isinstance(value, str) else "byte" if isinstance(value, bytes) else "member"
        return f"{type(value).__name__} of {len(value)} {unit}{'' if len(value) == 1 else 's'}"
    return type(value).__name__


def _show(tag: Any) -> str:
    """A type tag (a key of the attribute value, like a field name), never an attribute's value."""
    text = repr(tag)
    return text if len(text) <= 60 else f"{text[:57]}..."


def _number(value: Any) -> Decimal:
    if type(value) is not str:
        raise DecodeError(f"N value must be a string, got {_shape(value)}")
    try:
        number = _create_decimal(value)
    except decimal.DecimalException as exc:
        raise DecodeError(_number_reason(value, exc)) from None
    # Decimal also reads 'NaN', 'Infinity', '1_000' and padded text; DynamoDB never sends them.
    if not number.is_finite() or "_" in value or value.strip() != value:
        raise DecodeError(f"N value is not a number ({_shape(value)})")
    return number


def _number_error(value: str, exc: decimal.DecimalException, at: int | str) -> DecodeError:
    """The error of an inlined N value that Decimal refused, placed at the list index or map key ``at``."""
    error = DecodeError(_number_reason(value, exc))
    error.reversed_path.append(at)
    return error


def _number_reason(value: str, exc: decimal.DecimalException) -> str:
    if isinstance(exc, decimal.InvalidOperation):
        return f"N value is not a number ({_shape(value)})"
    if isinstance(exc, decimal.Overflow | decimal.Underflow | decimal.Clamped):
        return f"N value is outside DynamoDB's number range ({_shape(value)})"
    return f"N value has more than 38 significant digits ({_shape(value)})"


def _string(value: Any) -> str:
    if type(value) is not str:
        raise DecodeError(f"S value must be a string, got {_shape(value)}")
    return value


def _binary(value: Any) -> bytes:
    if type(value) is str:
        try:
            return _a2b_base64(value, strict_mode=True)
        except (binascii.Error, ValueError) as exc:
            raise DecodeError(f"B value is not valid base64 ({_shape(value)}): {exc}") from None
    if type(value) is bytes:  # boto3's low-level client has already decoded it
        return value
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value)
    raise DecodeError(f"B value must be a base64 string or bytes, got {_shape(value)}")


def _bool(value: Any) -> bool:
    if type(value) is not bool:
        raise DecodeError(f"BOOL value must be true or false, got {_shape(value)}")
    return value


def _null(value: Any) -> None:
    if value is not True:
        raise DecodeError(f"NULL value must be true, got {_shape(value)}")
    return None


def _members(tag: str, value: Any) -> list[Any]:
    if not isinstance(value, list):
        raise DecodeError(f"{tag} value must be a list, got {_shape(value)}")
    return value


def _string_set(value: Any) -> set[str]:
    for index, member in enumerate(_members("SS", value)):
        if type(member) is not str:
            error = DecodeError(f"SS member must be a string, got {_shape(member)}")
            error.reversed_path.append(index)
            raise error
    return set(value)


def _member_set(tag: str, decode: _Decoder, value: Any) -> set[Any]:
    out = set()
    for index, member in enumerate(_members(tag, value)):
        try:
            out.add(decode(member))
        except DecodeError as error:
            error.reversed_path.append(index)
            raise
    return out


def _number_set(value: Any) -> set[Decimal]:
    return _member_set("NS", _number, value)


def _binary_set(value: Any) -> set[bytes]:
    return _member_set("BS", _binary, value)


def _list(value: Any) -> list[Any]:
    if not isinstance(value, list):
        raise DecodeError(f"L value must be a list, got {_shape(value)}")
    out: list[Any] = []
    append = out.append
    index = 0
    inner: Any = None
    try:
        for index, av in enumerate(value):  # noqa: B007 - the error path reads index
            # S and N are most values: look them up directly, no iterator, no call.
            if type(av) is dict and len(av) == 1:
                inner = av.get("S")
                if type(inner) is str:
                    append(inner)
                    continue
                inner = av.get("N")
                if type(inner) is str:
                    number = _create_decimal(inner)
                    if number.is_finite() and "_" not in inner and inner.strip() == inner:
                        append(number)
                        continue
                for tag in av:
                    decode = _DECODERS.get(tag)
                    if decode is None:
                        raise _bad_value(av)
                    append(decode(av[tag]))
            else:
                append(_decode_other(av))
    except DecodeError as error:
        error.reversed_path.append(index)
        raise
    except decimal.DecimalException as exc:
        raise _number_error(inner, exc, at=index) from None
    return out


def _map(value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise DecodeError(f"M value must be an object, got {_shape(value)}")
    out: dict[str, Any] = {}
    name: Any = None
    inner: Any = None
    try:
        for name, av in value.items():
            if type(av) is dict and len(av) == 1:
                inner = av.get("S")
                if type(inner) is str:
                    out[name] = inner
                    continue
                inner = av.get("N")
                if type(inner) is str:
                    number = _create_decimal(inner)
                    if number.is_finite() and "_" not in inner and inner.strip() == inner:
                        out[name] = number
                        continue
                for tag in av:
                    decode = _DECODERS.get(tag)
                    if decode is None:
                        raise _bad_value(av)
                    out[name] = decode(av[tag])
            else:
                out[name] = _decode_other(av)
    except DecodeError as error:
        error.reversed_path.append(name)
        raise
    except decimal.DecimalException as exc:
        raise _number_error(inner, exc, at=name) from None
    return out


def _decode_other(av: Any) -> Any:
    """Everything but the inlined S and N fast paths, including their error cases."""
    if isinstance(av, dict) and len(av) == 1:
        for tag in av:
            decode = _DECODERS.get(tag)
            if decode is not None:
                return decode(av[tag])
    raise _bad_value(av)


def _bad_value(av: Any) -> DecodeError:
    if not isinstance(av, dict):
        return DecodeError(f'attribute value must be an object like {{"S": ...}}, got {type(av).__name__}')
    if len(av) != 1:
        tags = ", ".join(repr(tag) for tag in av) or "none"
        return DecodeError(f"attribute value must have exactly one type tag, got {tags}")
    (tag,) = av
    return DecodeError(f"unknown type tag {_show(tag)}")


_DECODERS: dict[str, _Decoder] = {
    "S": _string,
    "N": _number,
    "B": _binary,
    "BOOL": _bool,
    "NULL": _null,
    "M": _map,
    "L": _list,
    "SS": _string_set,
    "NS": _number_set,
    "BS": _binary_set,
}


def decode_value(av: Any) -> Any:
    """Decode one attribute value such as ``{"N": "12.50"}``; raises ``DecodeError`` naming the path."""
    return _decode_other(av)


def decode_image(image: Any) -> dict[str, Any]:
    """Decode a whole item (``Keys``, ``NewImage`` or ``OldImage``) into plain Python values."""
    if not isinstance(image, dict):
        raise DecodeError(f"image must be an object of attribute values, got {type(image).__name__}")
    return _map(image)


_ABSENT = object()


def check_image(image: Any, twin: dict[str, Any], decoded_twin: dict[str, Any]) -> None:
    """Raise what ``decode_image(image)`` would raise, decoding only the attributes that differ from ``twin``.

    A MODIFY's OldImage shares most attribute values with its NewImage (``twin``, already decoded as
    ``decoded_twin``): an attribute equal to the twin's decodes as the twin's did, so only the others are
    decoded. Python's ``==`` holds ``1 == True``, so equality alone would let an integer pass where the
    twin has a BOOL or NULL; valid DynamoDB JSON has no integers, and a twin whose decoded value holds no
    bool and no None has none of those tags, so such an attribute is decoded in full instead.
    """
    if not isinstance(image, dict):
        raise DecodeError(f"image must be an object of attribute values, got {type(image).__name__}")
    rest: dict[str, Any] = {}
    get = twin.get
    for name, av in image.items():
        other = get(name, _ABSENT)
        if other is av:
            continue
        if other == av:
            decoded = decoded_twin[name]
            kind = type(decoded)
            if kind is str or kind is Decimal or _flagless(decoded):
                continue
        rest[name] = av
    if rest:
        _map(rest)  # the same errors, in the same order, with the same paths as a full decode


def _flagless(value: Any) -> bool:
    """True when a decoded value holds no bool and no None (so its raw form held no BOOL or NULL tag)."""
    kind = type(value)
    if kind is list:
        members: Any = value
    elif kind is dict:
        members = value.values()
    else:
        return kind is not bool and value is not None
    for member in members:
        kind = type(member)
        if kind is str or kind is Decimal:
            continue
        if kind is list or kind is dict:
            if not _flagless(member):
                return False
        elif kind is bool or member is None:
            return False
    return True
