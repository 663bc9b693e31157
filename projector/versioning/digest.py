"""A short, stable fingerprint of an item image, to recognise the stream's record of a scanned state."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from decimal import Context, Decimal
from typing import Any

# Wide enough for any DynamoDB number (38 digits), so normalising never rounds.
_WIDE = Context(prec=80)


def image_digest(image: Mapping[str, Any] | None) -> str:
    """The same for two images with the same attributes and values, whichever path decoded them.

    Numbers are compared by value (``1.50`` = ``1.5``), sets by their members, maps by their keys.
    """
    text = json.dumps(_canonical(image or {}), separators=(",", ":"), sort_keys=True)
    return hashlib.blake2b(text.encode(), digest_size=12).hexdigest()


def _canonical(value: Any) -> Any:
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, Decimal | int):
        return {"n": str(Decimal(value).normalize(_WIDE))}
    if isinstance(value, bytes | bytearray | memoryview):
        return {"b": bytes(value).hex()}
    if isinstance(value, Mapping):
        return {"m": {str(key): _canonical(item) for key, item in value.items()}}
    if isinstance(value, set | frozenset):
        members = [_canonical(item) for item in value]
        return {"s": sorted(members, key=lambda item: json.dumps(item, sort_keys=True))}
    if isinstance(value, list | tuple):
        return [_canonical(item) for item in value]
    return {"x": repr(value)}
