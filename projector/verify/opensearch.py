"""Verify and repair a search projection: its read index against the source items.

Per item: *missing* (live item that should be shown, no visible document), *stale* (visible document
whose version is not the item's), *mismatch* (visible document whose body is not
``projection.document(item)``, or a visible document the projection would hide), and over the whole
index *extra* (visible document whose item is not in the source). In a ``keep_expired`` projection such
a document is *kept* instead: reported, never drift, never repaired (a scan cannot tell a TTL expiry
from a delete whose REMOVE was lost, and the projection asked to keep expired items).

Repairs are versioned writes into the read index, so a newer stream write always wins:

* missing / stale: the state the version rules give the item (``scheme.advance``); when they keep the
  stored state (a re-creation whose delete never arrived, or a tombstone younger than the 5 s margin)
  a new life of the stored state, which still ranks below any later change of the item;
* mismatch: the stored state again with ``version_type=external_gte``: an equal version rewrites the
  body, a newer stream write makes it fail with 409;
* extra: a tombstone of the stored state (same life and revision, deleted): exactly stored version + 1,
  what the item's own REMOVE would have written, so a later re-creation (a new life) still wins;
* a document deleted from the index behind projector's back leaves a delete marker (for
  ``index.gc_deletes``) that refuses the item's own version: it is written as a new life above it.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from opensearchpy import helpers
from opensearchpy.exceptions import ConflictError

from projector.changes.builders import change_from_item
from projector.changes.types import BackfillStamp
from projector.projection.document_ids import document_id, item_id_of
from projector.sinks.opensearch.serializer import dumps, merge_objects, to_json
from projector.sinks.opensearch.types import META_FIELD, READ_FILTER, meta_of
from projector.verify.checks import ProjectionCheck, Rebuild
from projector.verify.restore import search_backwards
from projector.verify.types import Finding, Verdict
from projector.versioning import AttributeScheme, ItemState, VersionError, scheme_for
from projector.versioning.schemes import LIFE_MARGIN_S

if TYPE_CHECKING:
    from projector.projection.base import DocumentProjection
    from projector.runtime import Runtime
    from projector.sinks.opensearch.types import StoredDocument
    from projector.source.items import Source
    from projector.stores.search import SearchDocumentStore

logger = logging.getLogger(__name__)

MAX_LIFE_STEPS = 8
KEPT = "kept"
KEY_FIELD = f"{META_FIELD}.key"


@dataclass(slots=True)
class Candidate:
    """An item that disagreed: what the source held and what the index held when compared."""

    id: str
    kind: str
    item: dict[str, Any] | None
    stored: StoredDocument | None
    read_at: float


class DocumentCheck(ProjectionCheck):
    """Compares one search projection's read index with source items (thread-safe)."""

    def __init__(self, runtime: Runtime, projection: DocumentProjection) -> None:
        self.runtime = runtime
        self.projection = projection
        self.store: SearchDocumentStore = runtime.store_for(projection)  # type: ignore[assignment]  # the document kind's store
        self.client = self.store.client
        self.scheme = scheme_for(projection.version)
        self.key_attributes = projection.key_attributes
        index = self.store.read_index(projection)
        if index is None:
            raise LookupError(f"{self.store.prefix}{projection.name} has no read index: run setup")
        self.index: str = index
        self.seen: set[str] = set()
        self.first: list[Candidate] = []
        self.stable: list[Candidate] = []
        self._lock = threading.Lock()

    # the check's phases ---------------------------------------------------------------------------------
    def add(self, items: list[dict[str, Any]], read_at: float) -> None:
        found = self.compare(items, read_at)
        with self._lock:
            self.first.extend(found)

    def first_pass(self) -> int:
        self.first.extend(self.extras())
        return len(self.first)

    def settle(self, source: Source, checked: int) -> Verdict:
        """Second pass: a candidate is drift only if it still disagrees and its item did not change."""
        verdict = Verdict(self.projection.name, "search", checked=checked)
        stable: list[Candidate] = []
        if self.first:
            again = self.recheck(source, [candidate.id for candidate in self.first])
            for before in self.first:
                after = again.get(before.id)
                if after is None:
                    continue  # caught up meanwhile: stream lag, not drift
                if after.item != before.item:
                    verdict.unsettled += 1
                    continue
                if after.kind == KEPT:
                    verdict.kept += 1
                    continue
                stable.append(after)
                verdict.findings.append(Finding(after.kind, after.id, self.finding_detail(after)))
        self.stable = stable
        return verdict

    def backwards(self, verdict: Verdict, source: Source) -> int:
        return search_backwards(verdict)

    def repair(self, verdict: Verdict, rebuild: Rebuild | None, segments: int) -> tuple[int, str | None]:
        """Versioned writes into the index serving reads now (looked up again: a swap may have happened)."""
        fresh = DocumentCheck(self.runtime, self.projection)
        return sum(fresh.repair_one(candidate) for candidate in self.stable), None

    # comparing ------------------------------------------------------------------------------------------
    def compare(self, items: list[dict[str, Any]], read_at: float) -> list[Candidate]:
        """First pass: scanned items against their documents (one mget); the ones that disagree."""
        by_id = {self.projection.item_id(item): item for item in items}
        with self._lock:
            self.seen.update(by_id)
        return self._candidates(by_id, self._stored(list(by_id)), list(by_id), read_at)

    def extras(self) -> list[Candidate]:
        """First pass: visible documents whose id the scan never read (the item may be newer)."""
        unseen = [item_id for item_id in self.visible_ids() if item_id not in self.seen]
        return self._candidates({}, self._stored(unseen), unseen, time.time())

    def recheck(self, source: Source, ids: list[str]) -> dict[str, Candidate]:
        """Second pass: documents first, then a consistent read of the items, so an item read live after
        its tombstone was seen is a re-creation, never the life the tombstone ended."""
        stored = self._stored(ids)
        read_at = time.time()
        return {found.id: found for found in self._candidates(source.get(ids), stored, ids, read_at)}

    def _stored(self, ids: list[str]) -> dict[str, StoredDocument]:
        return self.store.read_documents(self.projection, ids, build=self.index) if ids else {}

    def _candidates(
        self,
        items: dict[str, dict[str, Any]],
        stored: dict[str, StoredDocument],
        ids: list[str],
        read_at: float,
    ) -> list[Candidate]:
        found = []
        for item_id in ids:
            item, document = items.get(item_id), stored.get(item_id)
            kind = self.classify(item, document)
            if kind is not None:
                found.append(Candidate(item_id, kind, item, document, read_at))
        return found

    def classify(self, item: dict[str, Any] | None, stored: StoredDocument | None) -> str | None:
        visible = stored is not None and stored.visible
        if item is None:
            if visible and self.projection.keep_expired:
                return KEPT  # what keep_expired keeps: an item gone from the table (TTL), still shown
            return "extra" if visible else None
        try:
            expected = self.projection.document(item)
        except Exception as error:  # a poison item: the dead letters own it, not verify
            logger.debug("%s: cannot project an item: %s", self.projection.name, type(error).__name__)
            return None
        if not visible:
            return "missing" if expected is not None else None
        assert stored is not None
        if isinstance(self.scheme, AttributeScheme) and self._version(item) != stored.state.rev:
            return "stale"
        if expected is None:
            return "mismatch"
        try:
            return None if to_json(expected) == stored.source else "mismatch"
        except ValueError:
            return None  # not representable: poison, reported by the sink when it was written

    def _version(self, item: dict[str, Any]) -> int | None:
        try:
            return self.scheme.revision(self._change(item, time.time()))
        except VersionError:
            return None

    def _change(self, item: dict[str, Any], now: float) -> Any:
        return change_from_item(item, self.key_attributes, BackfillStamp(scan_started_at=now, read_at=now))

    def visible_ids(self) -> list[str]:
        """Every item id a reader can see in the read index (refreshed first, so recent writes count)."""
        self.client.indices.refresh(index=self.index)
        query = {"query": {"bool": {"filter": [READ_FILTER]}}, "_source": [KEY_FIELD]}
        return [
            item_id_of(hit["_id"], (hit.get("_source") or {}).get(META_FIELD))
            for hit in helpers.scan(self.client, query=query, index=self.index, size=2000)
        ]

    def finding_detail(self, candidate: Candidate) -> dict[str, Any]:
        detail: dict[str, Any] = {}
        if candidate.stored is not None:
            detail["stored"] = {
                "life": candidate.stored.state.life,
                "rev": candidate.stored.state.rev,
                "deleted": candidate.stored.state.deleted,
                "visible": candidate.stored.visible,
            }
        if candidate.item is not None and isinstance(self.scheme, AttributeScheme):
            detail["source_version"] = self._version(candidate.item)
        return detail

    # repairing ------------------------------------------------------------------------------------------
    def repair_one(self, candidate: Candidate) -> bool:
        """One versioned write that puts the document right; False when a newer write got there first."""
        now = candidate.read_at
        stored = candidate.stored.state if candidate.stored is not None else None
        document: dict[str, Any] | None = None
        if candidate.kind == "extra" or candidate.item is None:
            assert stored is not None
            # The delete happened before ``now`` (the item was already gone); dating the tombstone a margin
            # earlier makes a re-creation after ``now`` a new life, while changes of the ended life,
            # which all happened before the delete, still cannot revive it.
            state = replace(stored, deleted=True, seen_at=now - LIFE_MARGIN_S - 1.0)
        else:
            document = self.projection.document(candidate.item)
            if candidate.kind == "mismatch" and stored is not None:
                state = stored
            else:
                state = self.scheme.advance(stored, self._change(candidate.item, now)) or self._new_life(
                    stored, candidate.item, now
                )
        visible = document is not None and not state.deleted
        for _ in range(MAX_LIFE_STEPS):
            meta = dumps({META_FIELD: meta_of(state, visible, candidate.id)})
            body = merge_objects(meta, dumps(document)) if visible else meta
            try:
                self.client.index(
                    index=self.index,
                    id=document_id(candidate.id),
                    body=body,
                    version_type="external_gte",
                    version=self.scheme.external_version(state),
                )
                return True
            except ConflictError:
                if (
                    candidate.stored is not None
                    or self._stored([candidate.id])
                    or not isinstance(self.scheme, AttributeScheme)
                ):
                    logger.info(
                        "%s: %s not repaired: a newer write landed first", self.projection.name, candidate.id
                    )
                    return False
            # No document, yet a conflict: the delete marker of a document removed behind projector's
            # back (kept for index.gc_deletes). A new life of the item ranks above it and below nothing
            # the stream can still send (later changes are ranked against this state).
            state = replace(state, life=state.life + 1)
        return False

    def _new_life(self, stored: ItemState | None, item: dict[str, Any], now: float) -> ItemState:
        assert stored is not None  # advance() always accepts an item with nothing stored
        if not isinstance(self.scheme, AttributeScheme):
            return stored
        return ItemState(
            life=stored.life + 1,
            rev=self._version(item) or 0,
            deleted=False,
            position=stored.position,
            seen_at=now,
        )
