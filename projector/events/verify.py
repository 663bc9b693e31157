"""Verify and repair an event stream projection: each stream's document against the fold of its events.

The scan of the events table gives every stream's events; folded in version order they give what the
document must be (a fold that stops at a poison event or a gap stops where the sink stops too). Kinds,
as for search projections: *missing* (a fold with a document, no visible document), *stale* (the stored
version is not the fold's), *mismatch* (same version, another body; or visible where the fold ended),
*extra* (a visible document of a stream with no events). A candidate is drift only if it still
disagrees after ``settle`` seconds with the stream unchanged (re-read by a consistent Query); a stream
that grew meanwhile is unsettled.

Repairs are versioned writes into the read index: the fold at its own version (``external_gte``), so a
newer write from the stream always wins; an extra document becomes a tombstone at its stored version.
"""

from __future__ import annotations

import logging
import threading
from collections import defaultdict
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from opensearchpy import helpers
from opensearchpy.exceptions import ConflictError

from projector.events.documents import expected_source, stored_of, stored_source
from projector.events.fold import StreamState, fold
from projector.events.store import EventStore
from projector.events.types import EventError, read_stream_id, read_version
from projector.projection.rendering import Rejected
from projector.sinks.opensearch.types import READ_FILTER
from projector.verify.checks import ProjectionCheck, Rebuild
from projector.verify.types import Finding, Verdict

if TYPE_CHECKING:
    from projector.events.projection import EventStreamProjection
    from projector.runtime import Runtime
    from projector.source.items import Source
    from projector.stores.events import EventStreamStore

logger = logging.getLogger(__name__)

MGET_IDS = 1000


@dataclass(slots=True)
class StreamCandidate:
    stream_id: str
    doc_id: str
    kind: str
    expected: StreamState | None
    stored: StreamState | None
    events: int


class StreamCheck(ProjectionCheck):
    """Compares one event stream projection's read index with the folds of the scanned streams."""

    def __init__(self, runtime: Runtime, projection: EventStreamProjection) -> None:
        self.projection = projection
        documents: EventStreamStore = runtime.store_for(projection)  # type: ignore[assignment]  # the event-stream kind's store
        self.client = documents.client
        self.store = EventStore(documents.events.dynamodb, documents.settings.source_table, projection.layout)
        index = documents.read_index(projection)
        if index is None:
            raise LookupError(f"{documents.prefix}{projection.name} has no read index: run setup")
        self.index: str = index
        self.steps: dict[str, list[tuple[int, Any]]] = defaultdict(list)
        self.first: list[StreamCandidate] = []
        self.stable: list[StreamCandidate] = []
        self._lock = threading.Lock()

    # the check's phases -----------------------------------------------------------------------------------
    def add(self, items: list[dict[str, Any]], read_at: float) -> None:
        self.collect(items)

    def first_pass(self) -> int:
        self.first = self.candidates()
        return len(self.first)

    def settle(self, source: Source, checked: int) -> Verdict:
        verdict, self.stable = self.settle_candidates(self.first)
        return verdict

    def repair(self, verdict: Verdict, rebuild: Rebuild | None, segments: int) -> tuple[int, str | None]:
        return sum(self.repair_one(candidate) for candidate in self.stable), None

    # the scan ---------------------------------------------------------------------------------------------
    def collect(self, items: list[dict[str, Any]]) -> None:
        """Collect the scanned events of this projection's streams (thread-safe)."""
        local: dict[str, list[tuple[int, Any]]] = defaultdict(list)
        for item in items:
            entry = self._step(item)
            if entry is not None:
                local[entry[0]].append(entry[1])
        with self._lock:
            for stream_id, steps in local.items():
                self.steps[stream_id].extend(steps)

    def _step(self, item: dict[str, Any]) -> tuple[str, tuple[int, Any]] | None:
        layout = self.projection.layout
        try:
            stream_id = read_stream_id(item, layout)
            version = read_version(item, layout)
        except EventError:
            return None  # no place in any stream: the sink dead-letters it, verify cannot place it either
        try:
            event = self.projection.typed_event(item)
        except EventError as error:
            return stream_id, (version, Rejected(str(error)))
        if event is None and not self.projection.takes(stream_id, str(item.get(layout.type_attribute))):
            return None
        return stream_id, (version, event)

    def expected(self, stream_id: str, steps: list[tuple[int, Any]]) -> StreamState | None:
        """The fold the sink reaches: in version order, stopping at a gap or a poison event."""
        good: list[tuple[int, Any]] = []
        for version, event in sorted(steps, key=lambda step: step[0]):
            if isinstance(event, Rejected):
                break
            good.append((version, event))
        return fold(self.projection, stream_id, None, good).state if good else None

    # comparing --------------------------------------------------------------------------------------------
    def candidates(self) -> list[StreamCandidate]:
        """First pass: every scanned stream against its document, then visible documents of no stream."""
        found: list[StreamCandidate] = []
        streams = sorted(self.steps)
        stored = self._stored([self.projection.doc_id(s) for s in streams])
        for stream_id in streams:
            steps = self.steps[stream_id]
            doc_id = self.projection.doc_id(stream_id)
            candidate = self._classify(stream_id, doc_id, self.expected(stream_id, steps), stored.get(doc_id))
            if candidate is not None:
                candidate.events = len(steps)
                found.append(candidate)
        known = {self.projection.doc_id(s) for s in streams}
        extras = [doc_id for doc_id in self._visible_ids() if doc_id not in known]
        for doc_id, state in self._stored(extras).items():
            found.append(StreamCandidate(doc_id, doc_id, "extra", None, state[0], 0))
        return found

    def _classify(
        self,
        stream_id: str,
        doc_id: str,
        expected: StreamState | None,
        stored: tuple[StreamState | None, bool, dict[str, Any]] | None,
    ) -> StreamCandidate | None:
        state, visible, source = stored if stored is not None else (None, False, {})
        kind: str | None = None
        if expected is None:
            kind = "extra" if visible else None
        elif state is None or (not visible and expected.document is not None):
            kind = "missing"
        elif state.version != expected.version:
            kind = "stale"
        elif expected.document is None:
            kind = "mismatch" if visible else None
        elif source != expected_source(expected):
            kind = "mismatch"
        return StreamCandidate(stream_id, doc_id, kind, expected, state, 0) if kind else None

    def settle_candidates(self, first: list[StreamCandidate]) -> tuple[Verdict, list[StreamCandidate]]:
        """Second pass over the candidates, each stream re-read from the table; (verdict, stable drift)."""
        verdict = Verdict(self.projection.name, "search", checked=len(self.steps))
        stable: list[StreamCandidate] = []
        if not first:
            return verdict, stable
        stored = self._stored([candidate.doc_id for candidate in first])
        for before in first:
            steps = self._read_stream(before.stream_id) if before.kind != "extra" else []
            if len(steps) != before.events:
                verdict.unsettled += 1
                continue
            expected = self.expected(before.stream_id, steps) if steps else None
            after = self._classify(before.stream_id, before.doc_id, expected, stored.get(before.doc_id))
            if after is None:
                continue  # caught up meanwhile: stream lag, not drift
            stable.append(after)
            detail: dict[str, Any] = {"stream": after.stream_id}
            if after.stored is not None:
                detail["stored_version"] = after.stored.version
            if after.expected is not None:
                detail["stream_version"] = after.expected.version
            verdict.findings.append(Finding(after.kind, after.doc_id, detail))
        return verdict, stable

    def _read_stream(self, stream_id: str) -> list[tuple[int, Any]]:
        steps = []
        for item in self.store.items(stream_id):
            entry = self._step(item)
            if entry is not None:
                steps.append(entry[1])
        return steps

    def _stored(self, ids: list[str]) -> dict[str, tuple[StreamState | None, bool, dict[str, Any]]]:
        found: dict[str, tuple[StreamState | None, bool, dict[str, Any]]] = {}
        for start in range(0, len(ids), MGET_IDS):
            chunk = ids[start : start + MGET_IDS]
            response = self.client.mget(index=self.index, body={"ids": chunk}, realtime=True)
            for doc in response["docs"]:
                if doc.get("found"):
                    stored = stored_of(doc)
                    found[doc["_id"]] = (stored.state, stored.visible, stored_source(doc))
        return found

    def _visible_ids(self) -> list[str]:
        self.client.indices.refresh(index=self.index)
        query = {"query": {"bool": {"filter": [READ_FILTER]}}, "_source": False}
        return [hit["_id"] for hit in helpers.scan(self.client, query=query, index=self.index, size=2000)]

    # repairing --------------------------------------------------------------------------------------------
    def repair_one(self, candidate: StreamCandidate) -> bool:
        """One versioned write of the fold (a tombstone for an extra); False when a newer write won."""
        from projector.events.documents import body

        if candidate.kind == "extra" or candidate.expected is None:
            if candidate.stored is None:
                return False
            state = StreamState(candidate.stored.version, None)
        else:
            state = candidate.expected
            if candidate.stored is not None and candidate.stored.version > state.version:
                return False  # the document is ahead of the table: never move it back
        try:
            self.client.index(
                index=self.index,
                id=candidate.doc_id,
                body=body(state),
                version_type="external_gte",
                version=state.version,
            )
        except ConflictError:
            logger.info(
                "%s: %s not repaired: a newer write landed first", self.projection.name, candidate.doc_id
            )
            return False
        return True
