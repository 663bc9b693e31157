"""The event sink: fold each stream's new events onto its stored document, exactly, in version order.

Per batch and write target: one ``mget`` of the streams' documents, one Query per stream whose batch
events do not follow its stored version (the gap is read from the events table, consistently), one
fold per stream, one bulk write per size-limited chunk. Every write carries the stream version as
OpenSearch's external version: a replay, a duplicate or a racing writer can never leave an older fold
behind, and a conflict is re-read and re-folded.

What cannot be applied stops that stream, never the batch: bad input (no version, a payload failing
its model, a stream id of the wrong shape) and a handler failure are poison (dead-lettered whole), and
the stream's later records in the batch are dead-lettered as held behind it, so a redrive after the fix
replays them; a version missing from the table too is reported as the first unapplied record, with
one log line naming the stream.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from projector.changes.batch import ItemChanges, SinkResult
from projector.changes.types import ChangeKind
from projector.events.documents import Stored, index_line, stored_of
from projector.events.fold import FoldStop, StreamState, fold
from projector.events.outcome import (
    MISSING,
    Missing,
    StreamBatch,
    account,
    fail,
    hold,
    stopped,
)
from projector.events.store import EventStore
from projector.events.types import Event, EventError, read_version, recorded_event
from projector.projection.rendering import Rejected
from projector.retry.policy import DEFAULT_POLICY, DeadlineExceeded, RetryPolicy, retrying
from projector.retry.transient import is_transient_answer
from projector.sinks.opensearch import indexes
from projector.sinks.opensearch.chunks import by_size
from projector.sinks.opensearch.client import CountingClient, RequestCounter
from projector.sinks.opensearch.errors import describe_error, is_retryable
from projector.sinks.opensearch.types import WriteLimits

if TYPE_CHECKING:
    from projector.config.settings import Settings
    from projector.events.projection import EventStreamProjection
    from projector.retry.deadline import Deadline

logger = logging.getLogger(__name__)

CONFLICT_ROUNDS = 4
_ensured: set[tuple[str, str]] = set()
_lock = threading.Lock()


class EventStreamSink:
    """Applies stream records of an events table to the document projections folding them."""

    def __init__(
        self,
        client: Any,
        dynamodb: Any,
        settings: Settings,
        limits: WriteLimits | None = None,
        retry_policy: RetryPolicy = DEFAULT_POLICY,
    ) -> None:
        self.client = client
        self.dynamodb = dynamodb
        self.settings = settings
        self.limits = limits or WriteLimits()
        self.retry_policy = retry_policy

    def apply(
        self, projection: EventStreamProjection, items: Sequence[ItemChanges], deadline: Deadline
    ) -> SinkResult:
        result = SinkResult()
        counter = RequestCounter()
        client: Any = CountingClient(self.client, counter)
        streams = self._parse(projection, items, result)
        if streams:
            try:
                targets = self._targets(client, projection, deadline)
            except Exception as error:
                message = f"cannot resolve the indexes of {projection.name}: {describe_error(error)}"
                logger.error(message)
                for stream in streams.values():
                    fail(result, stream, 0, message)
                result.requests = counter.count
                return result
            store = EventStore(self.dynamodb, self.settings.source_table, projection.layout)
            bases: dict[str, int] = {}
            finals = [
                self._target(
                    client, store, projection, target, streams, deadline, result, bases if i == 0 else {}
                )
                for i, target in enumerate(targets)
            ]
            account(streams, bases, finals[0], result)
        result.requests = counter.count
        logger.info(
            "%s: %d applied, %d stale, %d failed, %d poison, %d gap read(s) in %d request(s)",
            projection.name,
            result.applied,
            result.stale,
            len(result.failed),
            len(result.poison),
            result.gap_reads,
            result.requests,
        )
        return result

    # parsing --------------------------------------------------------------------------------------------
    def _parse(
        self, projection: EventStreamProjection, items: Sequence[ItemChanges], result: SinkResult
    ) -> dict[str, StreamBatch]:
        streams: dict[str, StreamBatch] = {}
        for entry in items:
            for change in entry.changes:
                if change.kind is ChangeKind.REMOVE or change.new_image is None:
                    result.stale += 1  # events are immutable: a deleted event item does not un-happen
                    continue
                try:
                    recorded = recorded_event(change.new_image, projection.layout)
                    projection.check_stream_id(recorded.stream_id)
                    if recorded.stream_id != entry.item_id:
                        raise EventError(projection.layout.stream_attribute, "differs from the record's key")
                except EventError as error:
                    result.poison.append((change, str(error)))
                    continue
                if not projection.takes(recorded.stream_id, recorded.type):
                    result.stale += 1  # another category's stream: not this projection's
                    continue
                try:
                    step: Event[Any] | Rejected | None = projection.catalog.typed(recorded)
                except EventError as error:
                    step = Rejected(str(error))
                stream = streams.setdefault(recorded.stream_id, StreamBatch(recorded.stream_id))
                if recorded.version in stream.by_version:
                    stream.duplicates.append(change)
                else:
                    stream.by_version[recorded.version] = (change, step)
        return streams

    # one write target -----------------------------------------------------------------------------------
    def _target(
        self,
        client: Any,
        store: EventStore,
        projection: EventStreamProjection,
        target: str,
        streams: dict[str, StreamBatch],
        deadline: Deadline,
        result: SinkResult,
        bases: dict[str, int],
    ) -> dict[str, int]:
        """Fold and write every stream on ``target``; the version each stream's document reached.

        ``bases`` gets each stream's stored version as first read (what the batch found)."""
        final: dict[str, int] = {}
        pending = list(streams.values())
        for _ in range(CONFLICT_ROUNDS):
            if not pending:
                break
            try:
                stored = self._read(client, projection, target, pending, deadline)
            except Exception as error:
                for stream in pending:
                    fail(result, stream, 0, f"mget from {target}: {describe_error(error)}")
                return final
            lines: dict[str, tuple[bytes, int]] = {}
            for stream in pending:
                state = stored[stream.stream_id].state
                base = state.version if state else 0
                final[stream.stream_id] = base
                bases.setdefault(stream.stream_id, base)
                self._fill_gap(projection, store, stream, base, deadline, result)
                folded, stop = self._fold(projection, stream, state)
                stopped(stream, stop, result)
                if folded is not None and folded.version > base:
                    try:
                        line = index_line(target, projection.doc_id(stream.stream_id), folded)
                    except ValueError as error:
                        hold(stream, base, f"document not writable: {error}", result, first=True)
                        continue
                    lines[stream.stream_id] = (line, folded.version)
            conflicts = self._write(client, target, lines, streams, deadline, result, final)
            pending = [streams[stream_id] for stream_id in conflicts]
        for stream in pending:
            fail(result, stream, final.get(stream.stream_id, 0), "version conflicts kept coming")
        return final

    def _read(
        self,
        client: Any,
        projection: EventStreamProjection,
        target: str,
        streams: list[StreamBatch],
        deadline: Deadline,
    ) -> dict[str, Stored]:
        found: dict[str, Stored] = {}
        size = self.limits.mget_ids
        for start in range(0, len(streams), size):
            chunk = streams[start : start + size]
            ids = [projection.doc_id(stream.stream_id) for stream in chunk]

            def once(ids: list[str] = ids) -> dict[str, Any]:
                response: dict[str, Any] = client.mget(
                    index=target, body={"ids": ids}, realtime=True, request_timeout=self._timeout(deadline)
                )
                failed = [doc["error"] for doc in response["docs"] if "error" in doc]
                if failed:  # e.g. a new generation's shard still recovering: ask again
                    raise _Retry(f"mget of {len(failed)} document(s) failed: {failed[0]}")
                return response

            response = self._call(deadline, f"mget from {target}", once)
            for stream, doc in zip(chunk, response["docs"], strict=True):
                found[stream.stream_id] = stored_of(doc)
        return found

    def _fill_gap(
        self,
        projection: EventStreamProjection,
        store: EventStore,
        stream: StreamBatch,
        base: int,
        deadline: Deadline,
        result: SinkResult,
    ) -> None:
        """One Query for the versions between the stored one and the batch's newest that the batch lacks."""
        top = max(stream.by_version)
        missing = [v for v in range(base + 1, top) if stream.step(v) is MISSING]
        if not missing:
            return
        low, high = missing[0], missing[-1]
        result.gap_reads += 1
        stream.gap_read = True
        logger.info(
            "stream %s: versions %d..%d not in the batch, read from the events table",
            stream.stream_id,
            low,
            high,
        )
        try:
            items = list(store.items(stream.stream_id, after=low - 1, up_to=high, deadline=deadline))
        except Exception as error:  # the fold stops at the gap; the stream is reported below
            logger.warning("stream %s: gap read failed: %s", stream.stream_id, describe_error(error))
            return
        for item in items:
            try:
                recorded = recorded_event(item, store.layout)
            except EventError as error:
                # An item with no usable version cannot fill the gap, which stays (and is reported).
                with contextlib.suppress(EventError):
                    stream.gap[read_version(item, store.layout)] = Rejected(str(error))
                continue
            try:
                stream.gap[recorded.version] = projection.catalog.typed(recorded)
            except EventError as error:
                stream.gap[recorded.version] = Rejected(str(error))

    def _fold(
        self, projection: EventStreamProjection, stream: StreamBatch, state: StreamState | None
    ) -> tuple[StreamState | None, FoldStop | None]:
        base = state.version if state else 0
        steps: list[tuple[int, Event[Any] | None]] = []
        stop: FoldStop | None = None
        for version in range(base + 1, max(stream.by_version) + 1):
            step = stream.step(version)
            if isinstance(step, Missing):
                stop = FoldStop(version, f"version {version} is not in the events table", gap=True)
                break
            if isinstance(step, Rejected):
                stop = FoldStop(version, step.reason)
                break
            steps.append((version, step))
        if not steps:
            return None, stop
        outcome = fold(projection, stream.stream_id, state, steps)
        return outcome.state, outcome.stop or stop

    # stops and failures ---------------------------------------------------------------------------------
    # writing --------------------------------------------------------------------------------------------
    def _write(
        self,
        client: Any,
        target: str,
        lines: dict[str, tuple[bytes, int]],
        streams: dict[str, StreamBatch],
        deadline: Deadline,
        result: SinkResult,
        final: dict[str, int],
    ) -> list[str]:
        """Bulk-write ``lines``; the streams that met a version conflict (to re-read and re-fold)."""
        conflicts: list[str] = []
        pending = list(lines)

        def send() -> None:
            nonlocal pending
            again: list[str] = []
            for chunk in self._chunks(pending, lines):
                payload = b"".join(lines[stream_id][0] for stream_id in chunk)
                response = client.bulk(index=target, body=payload, request_timeout=self._timeout(deadline))
                for stream_id, entry in zip(chunk, response["items"], strict=True):
                    answer = next(iter(entry.values()))
                    status = int(answer.get("status", 0))
                    if 200 <= status < 300:
                        final[stream_id] = lines[stream_id][1]
                    elif status == 409:
                        conflicts.append(stream_id)
                    elif is_transient_answer(status):
                        again.append(stream_id)
                    else:
                        error = answer.get("error") or {}
                        reason = (
                            f"opensearch refused the document: {error.get('type')}: {error.get('reason')}"
                        )
                        hold(streams[stream_id], final.get(stream_id, 0), reason, result, first=True)
            pending = again
            if pending:
                raise _Retry(f"{len(pending)} document(s) got a retryable answer")

        if not pending:
            return conflicts
        try:
            self._call(deadline, f"bulk write to {target}", send)
        except Exception as error:
            for stream_id in pending:
                fail(result, streams[stream_id], final.get(stream_id, 0), describe_error(error))
        return conflicts

    def _chunks(self, ids: list[str], lines: dict[str, tuple[bytes, int]]) -> list[list[str]]:
        return by_size(ids, lambda stream_id: len(lines[stream_id][0]), self.limits.max_request_bytes)

    # plumbing -------------------------------------------------------------------------------------------
    def _timeout(self, deadline: Deadline) -> float:
        return deadline.timeout(self.settings.opensearch_timeout_s)

    def _call(self, deadline: Deadline, what: str, request: Any) -> Any:
        def attempt() -> Any:
            if deadline.expired:
                raise DeadlineExceeded(f"deadline reached before {what}")
            return request()

        return retrying(
            deadline, lambda e: isinstance(e, _Retry) or is_retryable(e), self.retry_policy, what
        )(attempt)

    def _targets(self, client: Any, projection: EventStreamProjection, deadline: Deadline) -> list[str]:
        prefix = self.settings.index_prefix

        def resolve() -> list[str]:
            targets: list[str] = indexes.write_targets(
                client, projection, prefix, request_timeout=self._timeout(deadline)
            )
            if targets:
                return targets
            with _lock:
                key = (prefix, projection.name)
                if key in _ensured:
                    raise RuntimeError(f"the write alias of {prefix}{projection.name} is gone; run setup")
                indexes.ensure(client, projection, prefix)
                _ensured.add(key)
            return indexes.write_targets(client, projection, prefix, request_timeout=self._timeout(deadline))

        targets: list[str] = self._call(
            deadline, f"resolving the write alias of {prefix}{projection.name}", resolve
        )
        return targets


class _Retry(Exception):
    """Some documents of a bulk write got a retryable answer."""
