"""Stream documents in OpenSearch: how a folded state is stored, read back and written.

A stream's document is its folded state plus the meta object every projector document has; its
OpenSearch version is the stream version (external versioning), so a write of an older fold is refused
by the server whatever raced it. An ended stream is a tombstone: the meta object only, hidden from
readers by the read alias filter, at the version that ended it.

Numbers come back from OpenSearch as the JSON the serializer wrote, which is exact by construction
(an int, or a double whose shortest repr is the Decimal): they are read back as those Decimals, so a
fold continued from a stored document equals the fold from scratch.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from projector.events.fold import StreamState
from projector.sinks.opensearch.serializer import dumps, merge_objects
from projector.sinks.opensearch.types import META_FIELD, meta_of
from projector.versioning.state import ItemState

_encode = json.JSONEncoder(separators=(",", ":"), allow_nan=False).encode


@dataclass(frozen=True, slots=True)
class Stored:
    """A stream document as read: its folded state (None: no document yet)."""

    state: StreamState | None
    visible: bool = False


def stored_of(doc: dict[str, Any]) -> Stored:
    """An mget answer's doc as a Stored state."""
    if not doc.get("found"):
        return Stored(None)
    source = dict(doc.get("_source") or {})
    meta = source.pop(META_FIELD, None) or {}
    if "rev" not in meta:
        return Stored(None)
    version = int(meta["rev"])
    ended = bool(meta.get("deleted"))
    document = None if ended else decimals(source)
    return Stored(StreamState(version, document), bool(meta.get("visible")))


def decimals(value: Any) -> Any:
    """JSON numbers as the Decimals they were written from (bools stay bools)."""
    if isinstance(value, dict):
        return {key: decimals(item) for key, item in value.items()}
    if isinstance(value, list):
        return [decimals(item) for item in value]
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, int):
        return Decimal(value)
    if isinstance(value, float):
        return Decimal(repr(value))
    return value


def body(state: StreamState) -> bytes:
    """The stored JSON of a folded state: meta object, then the document (a tombstone: meta only)."""
    visible = state.document is not None
    item_state = ItemState(life=0, rev=state.version, deleted=not visible, position=None, seen_at=0.0)
    meta = _encode({META_FIELD: meta_of(item_state, visible)}).encode()
    if state.document is None:
        return meta
    if META_FIELD in state.document:
        raise ValueError(f"the document has a {META_FIELD!r} field, which projector reserves")
    return merge_objects(meta, dumps(state.document))


def index_line(index: str, doc_id: str, state: StreamState, version_type: str = "external") -> bytes:
    """One bulk ``index`` action with its body, versioned by the stream version."""
    action = {
        "index": {"_index": index, "_id": doc_id, "version_type": version_type, "version": state.version}
    }
    return _encode(action).encode() + b"\n" + body(state) + b"\n"


def expected_source(state: StreamState) -> dict[str, Any] | None:
    """What a reader should find for a fold: the document as JSON (None for a tombstone)."""
    if state.document is None:
        return None
    source: dict[str, Any] = json.loads(dumps(state.document))
    return source


def stored_source(doc: dict[str, Any]) -> dict[str, Any]:
    source = dict(doc.get("_source") or {})
    source.pop(META_FIELD, None)
    return source
