"""One item's changes in a batch, and what a store made of them: the currency between pipeline and stores.

They sit with the changes, below the stores and the writers behind them, so both can speak them without
importing each other.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from projector.changes.types import Change


@dataclass(slots=True)
class ItemChanges:
    """One source item's changes in this batch, in stream order."""

    item_id: str
    changes: list[Change]

    @property
    def first_index(self) -> int:
        return self.changes[0].batch_index


@dataclass(slots=True)
class SinkResult:
    """What a store did with a batch for one projection.

    ``failed`` items could not be written within the retries and the deadline: the pipeline reports the
    earliest of their changes to Lambda, or the one ``unapplied`` names when the store applied the item's
    changes up to it (an event stream folds up to a gap it could not fill). ``poison`` changes can never
    be applied (mapping errors, oversized documents, bad versions) and go to the dead-letter store.
    ``gap_reads`` counts the reads an event-stream store made for versions a batch lacked.
    """

    applied: int = 0
    stale: int = 0
    failed: dict[str, str] = field(default_factory=dict)
    poison: list[tuple[Change, str]] = field(default_factory=list)
    requests: int = 0
    unapplied: dict[str, Change] = field(default_factory=dict)
    gap_reads: int = 0

    def merge(self, other: SinkResult) -> None:
        self.applied += other.applied
        self.stale += other.stale
        self.failed.update(other.failed)
        self.poison.extend(other.poison)
        self.requests += other.requests
