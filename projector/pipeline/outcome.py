"""What became of a batch, and the answer Lambda gets."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(slots=True)
class BatchOutcome:
    """Counts per change and the first record not applied (index into the batch), if any."""

    records: int = 0
    applied: int = 0
    stale: int = 0
    dead_lettered: int = 0
    expired_deletes: int = 0
    first_failed: int | None = None
    first_failed_sequence: str | None = None
    failures: dict[str, str] = field(default_factory=dict)
    first_sequence: str | None = None
    last_sequence: str | None = None
    max_lag_s: float | None = None
    requests: int = 0
    store_poison: bool = True
    gap_reads: int = 0  # events: Queries that read versions a batch lacked

    def fail_at(self, index: int, sequence: str | None, reason: str) -> None:
        if self.first_failed is None or index < self.first_failed:
            self.first_failed = index
            self.first_failed_sequence = sequence
        self.failures.setdefault(str(index), reason)

    def response(self) -> dict[str, Any]:
        """Lambda's partial-batch answer: only the first unapplied record; Lambda resends from there."""
        if self.first_failed_sequence is None:
            return {"batchItemFailures": []}
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
