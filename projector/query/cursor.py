"""Opaque page cursors: the last hit's sort values plus a fingerprint of the query they belong to.

A cursor is stateless (nothing kept on the server, it never expires) and URL-safe. Its fingerprint
makes a cursor from another query a clear error instead of a silently wrong page: a ``search_after``
position only means something under the same text, conditions and sort.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import logging
from typing import Any

from projector.query.types import QueryError

logger = logging.getLogger(__name__)

CURSOR_VERSION = 1
MAX_CURSOR_CHARS = 8192


def fingerprint(identity: dict[str, Any]) -> str:
    """A short hash of the canonical query (projection, text, filters, sort)."""
    text = json.dumps(identity, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:20]


def encode(after: list[Any], query_fingerprint: str) -> str:
    """URL-safe base64 (no padding) of ``{"v", "q", "after"}``."""
    payload = json.dumps({"v": CURSOR_VERSION, "q": query_fingerprint, "after": after}, separators=(",", ":"))
    return base64.urlsafe_b64encode(payload.encode()).decode().rstrip("=")


def decode(cursor: str, query_fingerprint: str, sort_keys: tuple[str, ...]) -> list[Any]:
    """The ``search_after`` values of ``cursor``, checked against this query and its sort keys."""
    if not isinstance(cursor, str) or len(cursor) > MAX_CURSOR_CHARS:
        raise QueryError("not a search cursor (wrong type or too long)")
    try:
        raw = base64.urlsafe_b64decode(cursor.strip() + "=" * (-len(cursor.strip()) % 4))
        payload = json.loads(raw)
    except (binascii.Error, ValueError, UnicodeDecodeError):
        raise QueryError("not a search cursor: pass back the cursor value a previous page printed") from None
    if not isinstance(payload, dict) or payload.get("v") != CURSOR_VERSION:
        raise QueryError("not a search cursor of this version: start again without --cursor")
    if payload.get("q") != query_fingerprint:
        raise QueryError(
            "this cursor belongs to a different query: repeat the same TEXT, --where and --sort as the page "
            "that printed it"
        )
    after = payload.get("after")
    if (
        not isinstance(after, list)
        or len(after) != len(sort_keys)
        or not all(value is None or isinstance(value, str | int | float) for value in after)
    ):
        raise QueryError("damaged search cursor: start again without --cursor")
    logger.debug("resuming after %s", dict(zip(sort_keys, after, strict=True)))
    return after
