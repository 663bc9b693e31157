"""Names and shapes shared by the OpenSearch index lifecycle and the writer."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from projector.projection.document_ids import document_id
from projector.versioning.state import ItemState

# Checked on OpenSearch 2.19.6: a leading underscore is accepted in mappings, documents, alias filters,
# _source includes and sorts (only the real metadata fields such as _id are refused). The underscore
# keeps it apart from any attribute name a projection may map.
META_FIELD = "_projector"
VISIBLE_FIELD = f"{META_FIELD}.visible"

META_MAPPING: dict[str, Any] = {
    "type": "object",
    "dynamic": "strict",
    "properties": {
        "life": {"type": "long"},
        "rev": {"type": "long"},
        "deleted": {"type": "boolean"},
        "position": {"type": "keyword"},
        "seen_at": {"type": "double"},
        "digest": {"type": "keyword", "index": False, "doc_values": False},
        "visible": {"type": "boolean"},
        # the full item id of a document stored under a hashed id (see ids.py); kept, never searched
        "key": {"type": "keyword", "index": False, "doc_values": False},
    },
}

READ_FILTER: dict[str, Any] = {"term": {VISIBLE_FIELD: True}}

_GENERATION = re.compile(r"-g(\d{6})$")


def meta_of(state: ItemState, visible: bool, item_id: str | None = None) -> dict[str, Any]:
    """The meta object stored with every document: the item's versioned state and whether it is shown.

    Under a hashed document id (``ids.document_id``) it also holds the full ``item_id`` as ``key``.
    """
    meta = {**state.to_dict(), "visible": visible}
    if item_id is not None and document_id(item_id) != item_id:
        meta["key"] = item_id
    return meta


def state_of(meta: dict[str, Any] | None) -> ItemState | None:
    """The ItemState a stored meta object describes (None when there is none)."""
    if not meta:
        return None
    return ItemState.from_dict(meta)


@dataclass(frozen=True, slots=True)
class IndexNames:
    """Every name one document projection uses in OpenSearch."""

    base: str

    @property
    def read_alias(self) -> str:
        return self.base

    @property
    def write_alias(self) -> str:
        return f"{self.base}-write"

    @property
    def template(self) -> str:
        return self.base

    @property
    def pattern(self) -> str:
        return f"{self.base}-g*"

    def physical(self, generation: int) -> str:
        return f"{self.base}-g{generation:06d}"

    def generation_of(self, index: str) -> int | None:
        """The generation number of one of this projection's physical indexes (None for other names)."""
        if not index.startswith(f"{self.base}-g"):
            return None
        match = _GENERATION.search(index)
        return int(match.group(1)) if match and index == self.physical(int(match.group(1))) else None


@dataclass(frozen=True, slots=True)
class IndexDescription:
    """Where a projection's aliases point and whether its stored build matches the code."""

    read_alias: str
    write_alias: str
    exists: bool
    read_index: str | None
    generation: int | None
    write_indexes: tuple[str, ...]
    stored_hash: str | None
    code_hash: str

    @property
    def rebuilding(self) -> bool:
        """A write target newer than the read index (an older one is the previous build, kept for rollback)."""
        return any(_generation(name) > (self.generation or 0) for name in self.write_indexes)

    @property
    def needs_rebuild(self) -> bool:
        return self.exists and self.stored_hash != self.code_hash

    def to_dict(self) -> dict[str, Any]:
        return {
            "read_alias": self.read_alias,
            "write_alias": self.write_alias,
            "exists": self.exists,
            "read_index": self.read_index,
            "generation": self.generation,
            "write_indexes": list(self.write_indexes),
            "stored_hash": self.stored_hash,
            "code_hash": self.code_hash,
            "rebuilding": self.rebuilding,
            "needs_rebuild": self.needs_rebuild,
        }


@dataclass(frozen=True, slots=True)
class WriteLimits:
    """Size and round limits of the OpenSearch sink (defaults stay under Amazon OpenSearch's payload cap)."""

    max_request_bytes: int = 5 * 1024 * 1024
    max_document_bytes: int = 10 * 1024 * 1024
    conflict_rounds: int = 3
    mget_ids: int = 5000


@dataclass(frozen=True, slots=True)
class StoredDocument:
    """One stored document as the sink sees it: its versioned state, visibility and the projected body."""

    state: ItemState
    visible: bool
    source: dict[str, Any]


def _generation(index: str) -> int:
    """The generation number of a physical index name ``...-gNNNNNN`` (0 if it has none)."""
    tail = index.rsplit("-g", 1)[-1]
    return int(tail) if tail.isdigit() else 0
