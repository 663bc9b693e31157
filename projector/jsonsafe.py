"""Binary values in JSON: base64 text, the way Lambda's stream events carry DynamoDB's binaries.

boto3 hands out ``B`` and ``BS`` values as bytes; a dead letter, a checkpoint's key or a record handed
to the handler must hold them as the stream does, so a redriven letter or a resumed scan reads back the
very same item. One rule, one place: what ``json`` cannot write (bytes) becomes base64 text, and a key
read back from JSON gets its bytes again.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Mapping
from typing import Any, overload


def base64_text(data: bytes | bytearray | memoryview) -> str:
    """Standard base64 (with padding), as Lambda's event has a ``B`` value."""
    return base64.b64encode(bytes(data)).decode("ascii")


def jsonable(value: Any, leaf: Callable[[Any], Any] | None = None) -> Any:
    """``value`` with every bytes-like inside it as base64 text; dicts and lists (tuples too) are copied.

    ``leaf`` converts any other value (a ``datetime``, say); without it other values are kept as they are.
    """
    if isinstance(value, Mapping):
        return {key: jsonable(item, leaf) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(item, leaf) for item in value]
    if isinstance(value, bytes | bytearray | memoryview):
        return base64_text(value)
    return leaf(value) if leaf is not None else value


@overload
def key_from_json(key: None) -> None: ...
@overload
def key_from_json(key: Mapping[str, Any]) -> dict[str, Any]: ...
def key_from_json(key: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """A DynamoDB key (``{name: {"S"|"N"|"B": value}}``) as boto3 wants it: ``B`` base64 text as bytes."""
    if key is None:
        return None
    return {
        name: {"B": base64.b64decode(value["B"])}
        if isinstance(value, Mapping) and isinstance(value.get("B"), str)
        else value
        for name, value in key.items()
    }
