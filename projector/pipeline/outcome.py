"""What became of a batch (stream records or a scanned page), and the answer Lambda gets."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from projector.exceptions import ProjectorError


class UnnamedFailureError(ProjectorError, RuntimeError):
    """A record failed that Lambda cannot be told about (it has no sequence number): fail the whole batch.

    Raised instead of answering, so Lambda resends the batch and the record is never skipped.
    """


@dataclass(slots=True)
class Tally:
    """Counts of one projection (or of a whole run): changes written, stale, poison, failed, requests."""

    written: int = 0
    stale: int = 0
    poison: int = 0
    failed: int = 0
    requests: int = 0

    def add(self, other: Tally) -> None:
        self.written += other.written
        self.stale += other.stale
        self.poison += other.poison
        self.failed += other.failed
        self.requests += other.requests

    def to_json(self) -> dict[str, int]:
        return {
            "written": self.written,
            "stale": self.stale,
            "poison": self.poison,
            "failed": self.failed,
            "requests": self.requests,
        }


@dataclass(slots=True)
class BatchOutcome:
    """What the one apply path did with a batch, read by the handler, the backfill and the redrives.

    ``first_failed`` is the index of the earliest record not applied (Lambda resends from there; a
    backfill page with any failure is not checkpointed). ``failures`` names each failure (projection
    and item, or the record) with its reason. ``per_projection`` counts what each projection did.
    """

    records: int = 0
    applied: int = 0
    stale: int = 0
    dead_lettered: int = 0
    expired_deletes: int = 0
    first_failed: int | None = None
    first_failed_sequence: str | None = None
    failures: dict[str, str] = field(default_factory=dict)
    per_projection: dict[str, Tally] = field(default_factory=dict)
    first_sequence: str | None = None
    last_sequence: str | None = None
    max_lag_s: float | None = None
    requests: int = 0
    gap_reads: int = 0  # events: Queries that read versions a batch lacked

    @property
    def ok(self) -> bool:
        """Everything applied, stale or safely dead-lettered: a backfill page may be checkpointed."""
        return self.first_failed is None

    @property
    def items(self) -> int:
        """A scanned page's name for ``records``."""
        return self.records

    def fail(self, index: int, sequence: str | None, key: str, reason: str) -> None:
        """Record ``index`` (``key``: what failed) is not applied; the earliest one is what Lambda gets."""
        if self.first_failed is None or index < self.first_failed:
            self.first_failed = index
            self.first_failed_sequence = sequence
        self.failures.setdefault(key, reason)

    def response(self) -> dict[str, Any]:
        """Lambda's partial-batch answer: only the first unapplied record; Lambda resends from there."""
        if self.first_failed is None:
            return {"batchItemFailures": []}
        if self.first_failed_sequence is None:
            raise UnnamedFailureError(
                f"record {self.first_failed} was not applied and has no sequence number to report; "
                "failing the whole batch"
            )
        return {"batchItemFailures": [{"itemIdentifier": self.first_failed_sequence}]}

    def summary(self) -> dict[str, Any]:
        return {
            "records": self.records,
            "applied": self.applied,
            "stale": self.stale,
            "dead_lettered": self.dead_lettered,
            "expired_deletes": self.expired_deletes,
            "failed_from": self.first_failed,
            "first_failed_sequence": self.first_failed_sequence,
            "first_sequence": self.first_sequence,
            "last_sequence": self.last_sequence,
            "max_lag_s": self.max_lag_s,
            "requests": self.requests,
            "gap_reads": self.gap_reads,
        }
