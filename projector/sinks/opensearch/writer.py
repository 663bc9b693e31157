"""The OpenSearch sink: versioned, coalesced, size-chunked bulk writes that stay exact under replays.

Per batch and physical index: one ``mget`` of the stored meta, one fold per item, one bulk request per
size-limited chunk. Every write is external-versioned, so the server rejects whatever the fold missed
(a racing writer). Deletes are tombstone documents, never real deletes, so they win forever, also after
``index.gc_deletes`` and restarts.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Iterable, Sequence
from functools import partial
from typing import TYPE_CHECKING, Any, TypeVar

from opensearchpy.exceptions import TransportError

from projector.changes.batch import ItemChanges, SinkResult
from projector.projection.base import DocumentProjection
from projector.projection.document_ids import document_id
from projector.projection.rendering import Rejected
from projector.retry.deadline import Deadline
from projector.retry.policy import DEFAULT_POLICY, DeadlineExceeded, RetryPolicy, retrying
from projector.retry.transient import is_transient_answer
from projector.sinks.opensearch import indexes
from projector.sinks.opensearch.chunks import by_size
from projector.sinks.opensearch.client import CountingClient, RequestCounter
from projector.sinks.opensearch.errors import (
    IndexLayoutError,
    PendingItems,
    describe_error,
    is_retryable,
)
from projector.sinks.opensearch.known import KnownStates, identities
from projector.sinks.opensearch.progress import ItemWrite as _ItemWrite
from projector.sinks.opensearch.progress import Status as _Status
from projector.sinks.opensearch.progress import landed as _landed
from projector.sinks.opensearch.progress import reason_of as _reason
from projector.sinks.opensearch.progress import refusal as _refusal
from projector.sinks.opensearch.progress import summarise as _summarise
from projector.sinks.opensearch.serializer import SerializationError, dumps, merge_objects
from projector.sinks.opensearch.types import META_FIELD, StoredDocument, WriteLimits, meta_of, state_of
from projector.versioning import ItemState, fold_write, scheme_for

if TYPE_CHECKING:
    from opensearchpy import OpenSearch

    from projector.changes.types import Change
    from projector.config.settings import Settings

logger = logging.getLogger(__name__)

T = TypeVar("T")
Chunk = list["_ItemWrite"]
POISON_STATUS = frozenset({400, 413})

_ensured: set[tuple[str, str]] = set()
_ensured_lock = threading.Lock()


class OpenSearchSink:
    """Applies item changes of document projections to every index behind their write alias."""

    def __init__(
        self,
        client: OpenSearch,
        settings: Settings,
        *,
        limits: WriteLimits | None = None,
        retry_policy: RetryPolicy = DEFAULT_POLICY,
        known: KnownStates | None = None,
    ) -> None:
        self.client = client
        self.settings = settings
        self.limits = limits or WriteLimits()
        self.retry_policy = retry_policy
        self.known = known  # None: every batch reads every id's stored state

    def apply(
        self, projection: DocumentProjection, items: Sequence[ItemChanges], deadline: Deadline
    ) -> SinkResult:
        result = SinkResult()
        if not items:
            return result
        counter = RequestCounter()
        client: Any = CountingClient(self.client, counter)
        try:
            targets = self._targets(client, projection, deadline)
        except Exception as error:  # nothing can be written: every item is reported, nothing raised
            message = f"cannot resolve the indexes of {projection.name}: {describe_error(error)}"
            logger.error(message)
            result.failed = dict.fromkeys((item.item_id for item in items), message)
            result.requests = counter.count
            return result
        # A target without a document for an item starts from another target's tombstone of it (the
        # index a rebuild is filling has not got its tombstones copied yet), so a late change of a
        # deleted item is stale there too and a re-creation gets the same life everywhere.
        seeds: dict[str, ItemState] = {}
        runs = []
        uuids = self._identities(client, targets, deadline)
        for target in targets:
            write = _TargetWrite(self, client, projection, target, deadline, uuids.get(target))
            runs.append(write.run(items, seeds))
            for item_id, item_write in runs[-1].items():
                if item_write.read_tombstone is not None:
                    seeds.setdefault(item_id, item_write.read_tombstone)
        _summarise(items, targets, runs, result)
        result.requests = counter.count
        logger.info(
            "%s: %d applied, %d stale, %d failed, %d poison in %d request(s) to %s",
            projection.name,
            result.applied,
            result.stale,
            len(result.failed),
            len(result.poison),
            result.requests,
            ",".join(targets),
        )
        return result

    def read_documents(
        self, projection: DocumentProjection, ids: Sequence[str], index: str | None = None
    ) -> dict[str, StoredDocument]:
        """Stored documents of ``ids`` (tombstones and hidden too) from the read alias or ``index``."""
        source = index or indexes.names(projection, self.settings.index_prefix).read_alias
        deadline = Deadline.after(self.settings.opensearch_timeout_s * 3)
        found: dict[str, StoredDocument] = {}
        for start in range(0, len(ids), self.limits.mget_ids):
            chunk = list(ids[start : start + self.limits.mget_ids])
            item_ids = {document_id(item_id): item_id for item_id in chunk}

            def mget(item_ids: dict[str, str] = item_ids) -> dict[str, Any]:
                answer: dict[str, Any] = self.client.mget(
                    index=source,
                    body={"ids": list(item_ids)},
                    realtime=True,
                    request_timeout=deadline.timeout(self.settings.opensearch_timeout_s),
                )
                return answer

            response = self._call(deadline, f"mget from {source}", mget)
            for doc in response["docs"]:
                body = dict(doc.get("_source") or {}) if doc.get("found") else {}
                meta = body.pop(META_FIELD, None)
                state = state_of(meta)
                if state is not None and meta is not None:
                    visible = bool(meta.get("visible"))
                    item_id = item_ids.get(doc["_id"], doc["_id"])
                    found[item_id] = StoredDocument(state=state, visible=visible, source=body)
        return found

    def read_states(
        self, projection: DocumentProjection, ids: Sequence[str], index: str | None = None
    ) -> dict[str, ItemState]:
        """The stored ItemState of each id that has a document (live, hidden or tombstone)."""
        return {item_id: doc.state for item_id, doc in self.read_documents(projection, ids, index).items()}

    def _identities(self, client: Any, targets: list[str], deadline: Deadline) -> dict[str, str]:
        """The targets' uuids when states are remembered; none (so every id is read) if unavailable."""
        if self.known is None:
            return {}
        try:
            return self._call(
                deadline,
                "reading the uuids of the write targets",
                lambda: identities(client, targets, deadline.timeout(self.settings.opensearch_timeout_s)),
            )
        except Exception as error:  # reading every id is always correct, only slower
            logger.warning("cannot read the uuids of %s: %s", ",".join(targets), describe_error(error))
            return {}

    def _call(self, deadline: Deadline, what: str, request: Callable[[], T]) -> T:
        def attempt() -> T:
            if deadline.expired:
                raise DeadlineExceeded(f"deadline reached before {what}")
            return request()

        return retrying(deadline, is_retryable, self.retry_policy, what)(attempt)

    def _targets(self, client: Any, projection: DocumentProjection, deadline: Deadline) -> list[str]:
        prefix = self.settings.index_prefix

        def resolve() -> list[str]:
            timeout = deadline.timeout(self.settings.opensearch_timeout_s)
            targets = indexes.write_targets(client, projection, prefix, request_timeout=timeout)
            if targets:
                return targets
            key = (prefix, projection.name)
            with _ensured_lock:
                if key in _ensured:
                    raise IndexLayoutError(
                        f"the write alias of {prefix}{projection.name} is gone although "
                        "this process created it; run `projector setup`"
                    )
                logger.warning(
                    "the write alias of %s%s is missing: creating the indexes", prefix, projection.name
                )
                indexes.ensure(client, projection, prefix)
                _ensured.add(key)
            return indexes.write_targets(client, projection, prefix, request_timeout=timeout)

        return self._call(deadline, f"resolving the write alias of {prefix}{projection.name}", resolve)


class _TargetWrite:
    """Read, fold and write one batch of items against one physical index."""

    def __init__(
        self,
        sink: OpenSearchSink,
        client: Any,
        projection: DocumentProjection,
        target: str,
        deadline: Deadline,
        identity: str | None = None,
    ) -> None:
        self.sink = sink
        self.known = sink.known if identity is not None else None
        self.identity = identity or ""
        self.client = client
        self.projection = projection
        self.target = target
        self.deadline = deadline
        self.limits = sink.limits
        self.scheme = scheme_for(projection.version)

    def run(
        self, entries: Sequence[ItemChanges], seeds: dict[str, ItemState] | None = None
    ) -> dict[str, _ItemWrite]:
        writes = {entry.item_id: _ItemWrite(entry) for entry in entries}
        to_read, to_fold = list(writes.values()), list[_ItemWrite]()
        first = True
        seeded: set[str] = set()  # stored states that are another target's tombstone, not this index's
        recalled: set[int] = set()  # writes whose stored state came from memory, not from a read
        verifying: list[_ItemWrite] = []
        while to_read or to_fold:
            unread = self._recall(to_read, recalled) if first else to_read
            self._read(unread, seeds or {}, seeded)
            if first or verifying:
                for write in to_read if first else verifying:
                    write.read_tombstone = (
                        write.stored if write.stored is not None and write.stored.deleted else None
                    )
                first = False
            batch = [write for write in to_read if write.status is not _Status.FAILED and not _landed(write)]
            batch += to_fold
            verifying = []
            for write in batch:
                self._fold(write)
                if write.line is None and id(write) in recalled:
                    # Dropping changes as stale is only ever decided on a read: a remembered state may be
                    # behind a racing writer's (a write, by contrast, is checked by its external version).
                    recalled.discard(id(write))
                    verifying.append(write)
                elif write.line is None:
                    write.status = _Status.UNCHANGED
            conflicts, rejected = self._write([write for write in batch if write.line is not None])
            to_read, to_fold = list(verifying), []
            for write in conflicts:
                if self.known is not None:
                    self.known.forget(self.identity, write.item_id)
                write.conflicts += 1
                if write.conflicts > self.limits.conflict_rounds:
                    write.status = _Status.SUPERSEDED
                else:
                    to_read.append(write)
            for write, reason in rejected:
                assert write.folded is not None and write.folded.last is not None
                write.rejected.append((write.folded.last, reason))
                to_fold.append(write)
        self._remember(writes.values(), seeded)
        return writes

    def _recall(self, writes: list[_ItemWrite], recalled: set[int]) -> list[_ItemWrite]:
        """Set the stored state of the ids this process knows; answer the others (to be read)."""
        if self.known is None:
            return writes
        unknown = []
        for write in writes:
            state = self.known.get(self.identity, write.item_id)
            if state is None:
                unknown.append(write)
            else:
                write.stored = state
                recalled.add(id(write))
        return unknown

    def _remember(self, writes: Iterable[_ItemWrite], seeded: set[str]) -> None:
        """Keep what this index acknowledged: a landed write's state, or the state an unchanged item has."""
        if self.known is None:
            return
        for write in writes:
            if (
                write.status is _Status.WRITTEN
                and write.folded is not None
                and write.folded.state is not None
            ):
                self.known.remember(self.identity, write.item_id, write.folded.state)
            elif (
                write.status is _Status.UNCHANGED and write.stored is not None and write.item_id not in seeded
            ):
                self.known.remember(self.identity, write.item_id, write.stored)
            else:
                self.known.forget(self.identity, write.item_id)

    def _timeout(self) -> float:
        return self.deadline.timeout(self.sink.settings.opensearch_timeout_s)

    def _read(self, writes: list[_ItemWrite], seeds: dict[str, ItemState], seeded: set[str]) -> None:
        def send(chunk: list[_ItemWrite]) -> list[_ItemWrite]:
            ids = [document_id(write.item_id) for write in chunk]
            response = self.client.mget(
                index=self.target,
                body={"ids": ids},
                _source_includes=META_FIELD,
                realtime=True,
                request_timeout=self._timeout(),
            )
            again = []
            for write, doc in zip(chunk, response["docs"], strict=True):
                if "error" in doc:
                    write.error = f"mget: {doc['error']}"
                    again.append(write)
                else:
                    source = (doc.get("_source") or {}) if doc.get("found") else {}
                    write.stored = state_of(source.get(META_FIELD))
                    if write.stored is None and write.item_id in seeds:
                        write.stored = seeds[write.item_id]
                        seeded.add(write.item_id)
                    else:
                        seeded.discard(write.item_id)
            return again

        size = self.limits.mget_ids
        self._retry(
            f"mget from {self.target}",
            writes,
            lambda pending: [pending[i : i + size] for i in range(0, len(pending), size)],
            send,
        )

    def _fold(self, write: _ItemWrite) -> None:
        """One pass over the item's changes (less those OpenSearch refused) into one versioned index line."""
        refused = {id(change) for change, _ in write.rejected}
        changes = [change for change in write.entry.changes if id(change) not in refused]
        folded = fold_write(
            self.scheme,
            write.stored,
            changes,
            partial(self._line, write.item_id),
            self.projection.keep_expired,
        )
        write.folded, write.line = folded, folded.output

    def _line(self, item_id: str, state: ItemState, change: Change) -> bytes | Rejected:
        """The bulk lines (action and body) that store ``state``: its document, hidden or a tombstone."""
        document = None if state.deleted else self._render(change)
        if isinstance(document, Rejected):
            return document
        visible = document is not None
        # The meta object holds only ints, bools, a str and a finite float: the C encoder as is.
        meta = _encode_json({META_FIELD: meta_of(state, visible, item_id)}).encode()
        body = merge_objects(meta, document) if document is not None else meta
        if len(body) > self.limits.max_document_bytes:
            return Rejected(
                f"document of {len(body)} bytes exceeds the limit of {self.limits.max_document_bytes} bytes"
            )
        action = {
            "index": {
                "_index": self.target,
                "_id": document_id(item_id),
                "version_type": "external",
                "version": self.scheme.external_version(state),
            }
        }
        return _encode_json(action).encode() + b"\n" + body + b"\n"

    def _render(self, change: Change) -> bytes | Rejected | None:
        """The document of a live state as JSON; None keeps it out of search (hidden)."""
        if change.image is None:
            raise ValueError(f"{change.kind} without a new image: the stream must carry new images")
        document = self.projection.document(change.image)
        if document is None:
            return None
        if not isinstance(document, dict):
            raise TypeError(f"document() must return a dict or None, got {type(document).__name__}")
        if META_FIELD in document:
            return Rejected(f"the document has a {META_FIELD!r} field, which projector reserves")
        try:
            return dumps(document)
        except SerializationError as error:
            return Rejected(str(error))

    def _write(self, writes: list[_ItemWrite]) -> tuple[list[_ItemWrite], list[tuple[_ItemWrite, str]]]:
        conflicts: list[_ItemWrite] = []
        rejected: list[tuple[_ItemWrite, str]] = []

        def send(chunk: list[_ItemWrite]) -> list[_ItemWrite]:
            payload = b"".join(write.line or b"" for write in chunk)
            try:
                response = self.client.bulk(index=self.target, body=payload, request_timeout=self._timeout())
            except TransportError as error:
                if error.status_code not in POISON_STATUS:
                    raise
                # The request was refused as a whole (an invalid id, a body over the size limit): halve it
                # until the item that causes it is alone, so only that item is poison.
                if len(chunk) == 1:
                    rejected.append((chunk[0], f"opensearch refused the request: {_refusal(error)}"))
                    return []
                logger.warning(
                    "bulk write to %s refused as a whole (%s): splitting %d items",
                    self.target,
                    _refusal(error),
                    len(chunk),
                )
                middle = len(chunk) // 2
                return send(chunk[:middle]) + send(chunk[middle:])
            again = []
            for write, entry in zip(chunk, response["items"], strict=True):
                answer = next(iter(entry.values()))
                status = int(answer.get("status", 0))
                failure = answer.get("error") or {}
                if 200 <= status < 300:
                    write.status = _Status.WRITTEN
                elif status == 409:
                    conflicts.append(write)
                elif is_transient_answer(status, failure.get("type")):
                    write.error = f"{status} {_reason(failure)}"
                    again.append(write)
                elif status in POISON_STATUS:
                    rejected.append((write, f"opensearch rejected the document: {_reason(failure)}"))
                else:
                    write.status, write.error = _Status.FAILED, f"{status} {_reason(failure)}"
            return again

        if any(document_id(write.item_id) != write.item_id for write in writes):
            self._ensure_meta_mapping()
        self._retry(f"bulk write to {self.target}", writes, self._chunks, send)
        # a chunk resent after a transient error midway through a split may report an item twice
        unique_rejected = {id(write): (write, reason) for write, reason in rejected}
        return list({id(write): write for write in conflicts}.values()), list(unique_rejected.values())

    def _ensure_meta_mapping(self) -> None:
        """An index made before hashed ids has no ``_projector.key`` field yet (strict mapping): add it."""
        try:
            indexes.ensure_meta_mapping(self.client, self.target)
        except Exception as error:  # the writes then fail on their own, item by item, and are reported
            logger.warning("cannot update the meta mapping of %s: %s", self.target, describe_error(error))

    def _chunks(self, writes: list[_ItemWrite]) -> list[list[_ItemWrite]]:
        return by_size(writes, lambda write: len(write.line or b""), self.limits.max_request_bytes)

    def _retry(
        self,
        what: str,
        writes: list[_ItemWrite],
        chunker: Callable[[list[_ItemWrite]], list[Chunk]],
        send: Callable[[Chunk], Chunk],
    ) -> None:
        """Send ``writes`` in chunks, retry only what got a retryable answer, fail what is left at the end."""
        pending = list(writes)

        def attempt() -> None:
            nonlocal pending
            if self.deadline.expired:
                raise DeadlineExceeded(f"deadline reached before {what}")
            chunks, again = chunker(pending), []
            for index, chunk in enumerate(chunks):
                try:
                    again += send(chunk)
                except Exception:
                    pending = again + [write for rest in chunks[index:] for write in rest]
                    raise
            pending = again
            if pending:
                raise PendingItems(len(pending), pending[0].error)

        if not pending:
            return
        try:
            retrying(self.deadline, is_retryable, self.sink.retry_policy, what)(attempt)
        except Exception as error:
            for write in pending:
                write.status = _Status.FAILED
                write.error = (
                    f"gave up retrying {what}: {write.error}"
                    if isinstance(error, PendingItems)
                    else f"{what} failed: {describe_error(error)}"
                )
            logger.warning("%s: %d item(s) failed: %s", what, len(pending), describe_error(error))


_encode_json = json.JSONEncoder(separators=(",", ":"), allow_nan=False).encode
