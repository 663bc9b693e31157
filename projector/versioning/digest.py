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

    Numbers are compared by value (``1.50`` = ``1.5``, ``1E+1`` = ``10``), sets by their members, maps
    by their keys; the whole image is JSON-encoded in C, so a fingerprint costs about 10 µs per item.
    """
    text = _encode(image or {})
    return hashlib.blake2b(text.encode(), digest_size=12).hexdigest()


def _tagged(value: Any) -> Any:
    """What the JSON encoder cannot write itself, as a tagged object (so ``"1"`` and ``1`` differ)."""
    if isinstance(value, Decimal):
        text = str(value)
        if "E" in text or ("." in text and text[-1] == "0"):  # 1.50 and 1.5, 1E+1 and 10: one value
            normal = value.normalize(_WIDE)
            text = str(int(normal)) if "E+" in str(normal) else str(normal)
        return {"n": text}
    if isinstance(value, bytes | bytearray | memoryview):
        return {"b": bytes(value).hex()}
    if isinstance(value, set | frozenset):
        return {"s": sorted(_encode(member) for member in value)}
    raise TypeError(f"cannot fingerprint a {type(value).__name__}")


_encode = json.JSONEncoder(separators=(",", ":"), sort_keys=True, default=_tagged).encode
