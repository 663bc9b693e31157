"""Document ids that always fit OpenSearch: an item id over 512 UTF-8 bytes gets a stable short form.

OpenSearch refuses an ``_id`` longer than 512 bytes, and it refuses it for the whole ``_bulk`` request.
Such an item is stored under ``~sha256~`` + the hex SHA-256 of its item id (72 bytes); the full item id
stays in the document's meta (``_projector.key``) and in the projected body. Every other item id is its
own document id, so nothing stored before needs a migration.

Collision-free: a natural id that already has the hashed shape is hashed too, so a hashed-shape id only
ever comes from hashing, and two different item ids never share a document id (short ones map to
themselves, long ones and lookalikes to distinct digests).
"""

from __future__ import annotations

import hashlib
import re
from typing import Any

MAX_ID_BYTES = 512
HASHED_PREFIX = "~sha256~"
_HASHED = re.compile(r"^~sha256~[0-9a-f]{64}$")


def document_id(item_id: str) -> str:
    """The ``_id`` of ``item_id``'s document: itself when it fits and is not hashed-shaped, else its digest."""
    fits = len(item_id) * 4 <= MAX_ID_BYTES or len(item_id.encode("utf-8")) <= MAX_ID_BYTES
    if fits and not (item_id.startswith(HASHED_PREFIX) and _HASHED.match(item_id)):
        return item_id
    return HASHED_PREFIX + hashlib.sha256(item_id.encode("utf-8")).hexdigest()


def is_hashed(doc_id: str) -> bool:
    """Whether ``doc_id`` is a digest (the item id is then in the document's ``_projector.key``)."""
    return _HASHED.match(doc_id) is not None


def item_id_of(doc_id: str, meta: dict[str, Any] | None) -> str:
    """The item id behind a stored document: its meta ``key`` for a hashed id, else the id itself."""
    if meta and isinstance(meta.get("key"), str):
        return str(meta["key"])
    return doc_id
