"""What one batch holds per stream, and what became of it: stops, dead letters, failures, counts.

A fold never skips a version, so whatever stops a stream stops it there: a poison event (bad input, a
handler failure, a document OpenSearch refuses) is dead-lettered and the stream's later records in the
batch are dead-lettered as held behind it; a version missing from the table too is a failure, reported
as the stream's first unapplied record (Lambda resends from there).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from projector.changes.batch import SinkResult
from projector.projection.rendering import Rejected

if TYPE_CHECKING:
    from projector.changes.types import Change
    from projector.events.fold import FoldStop
    from projector.events.types import Event

logger = logging.getLogger(__name__)


@dataclass(slots=True)
class StreamBatch:
    """One stream's records in the batch, by version (the first of duplicates), and the rest."""

    stream_id: str
    by_version: dict[int, tuple[Change, Event[Any] | Rejected | None]] = field(default_factory=dict)
    duplicates: list[Change] = field(default_factory=list)
    gap: dict[int, Event[Any] | Rejected | None] = field(default_factory=dict)
    gap_read: bool = False

    def step(self, version: int) -> Event[Any] | Rejected | Missing | None:
        if version in self.by_version:
            return self.by_version[version][1]
        return self.gap.get(version, MISSING)


class Missing:
    """A version neither the batch nor the gap read holds."""


MISSING = Missing()


def stopped(stream: StreamBatch, stop: FoldStop | None, result: SinkResult) -> None:
    if stop is None:
        return
    later = sorted(v for v in stream.by_version if v >= stop.version)
    if not later:
        return
    if stop.gap:
        fail(result, stream, stop.version - 1, stop.reason)
        return
    hold(stream, stop.version - 1, stop.reason, result, first=False, poison_at=stop.version)


def hold(
    stream: StreamBatch,
    version: int,
    reason: str,
    result: SinkResult,
    first: bool,
    poison_at: int | None = None,
) -> None:
    """Dead-letter the stream's batch records above ``version``: the poison itself, the rest held."""
    seen = {id(change) for change, _ in result.poison}
    for v in sorted(stream.by_version):
        if v <= version:
            continue
        change = stream.by_version[v][0]
        if id(change) in seen:
            continue
        if v == poison_at or first:
            result.poison.append((change, reason))
            first = False
        else:
            result.poison.append(
                (change, f"held: stream {stream.stream_id} stopped at version {version} ({reason})")
            )


def fail(result: SinkResult, stream: StreamBatch, version: int, reason: str) -> None:
    later = [v for v in sorted(stream.by_version) if v > version]
    if not later:
        return
    change = stream.by_version[later[0]][0]
    previous = result.unapplied.get(stream.stream_id)
    if previous is None or change.batch_index < previous.batch_index:
        result.unapplied[stream.stream_id] = change
    if stream.stream_id not in result.failed:
        result.failed[stream.stream_id] = reason
        logger.warning(
            "stream %s stopped at version %d: %s; first unapplied record: %s",
            stream.stream_id,
            version,
            reason,
            change.sequence_number or f"#{change.batch_index}",
        )


def account(
    streams: dict[str, StreamBatch],
    bases: dict[str, int],
    reached: dict[str, int],
    result: SinkResult,
) -> None:
    """Counts from the target serving reads (the first): a record above what was stored and up to
    what was reached is applied; at or below what was stored it is stale (a replay or duplicate)."""
    poisoned = {id(change) for change, _ in result.poison}
    for stream in streams.values():
        result.stale += len(stream.duplicates)
        if stream.stream_id in result.failed:
            continue
        base, top = bases.get(stream.stream_id, 0), reached.get(stream.stream_id, 0)
        for version, (change, _) in stream.by_version.items():
            if id(change) in poisoned:
                continue
            if base < version <= top:
                result.applied += 1
            elif version <= base:
                result.stale += 1
