"""What the runner says about each batch: one status line for people, one JSON object for scripts."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any, Literal

Outcome = Literal["ok", "partial", "error", "dead_lettered", "skipped"]


@dataclass(frozen=True)
class BatchReport:
    """One invocation (or one dead-lettering) of one shard's batch."""

    shard_id: str
    outcome: Outcome
    records: int
    first_sequence_number: str | None
    last_sequence_number: str | None
    failures: int
    attempt: int
    applied: int
    lag_s: float | None
    duration_ms: float
    checkpoint: str | None = None
    error: str | None = None

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["lag_s"] = None if self.lag_s is None else round(self.lag_s, 3)
        data["duration_ms"] = round(self.duration_ms, 1)
        return data

    def line(self) -> str:
        """``shard … records=… seq=first..last failures=… lag=… took=…`` for stderr."""
        lag = "-" if self.lag_s is None else f"{self.lag_s:.1f}s"
        text = (
            f"{_short(self.shard_id)} {self.outcome:<13} records={self.records:<5} "
            f"seq={self.first_sequence_number}..{self.last_sequence_number} failures={self.failures} "
            f"attempt={self.attempt} lag={lag} took={self.duration_ms:.0f}ms"
        )
        return f"{text} error={self.error}" if self.error else text


def lag_seconds(records: Sequence[dict[str, Any]], now: float | None = None) -> float | None:
    """now minus the ApproximateCreationDateTime of the batch's last record (seconds)."""
    if not records:
        return None
    created = records[-1].get("dynamodb", {}).get("ApproximateCreationDateTime")
    if not isinstance(created, int | float):
        return None
    return max(0.0, (time.time() if now is None else now) - float(created))


def _short(shard_id: str) -> str:
    """Real shard ids are long (``shardId-00000001541626099285-f35f62ef``); their tail tells them apart."""
    return shard_id if len(shard_id) <= 24 else "…" + shard_id[-20:]
