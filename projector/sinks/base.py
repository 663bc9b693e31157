"""The contract between the pipeline and a sink."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Generic, TypeVar

if TYPE_CHECKING:
    from projector.changes.types import Change
    from projector.retry.deadline import Deadline

P = TypeVar("P")


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
    """What a sink did with a batch for one projection.

    ``failed`` items could not be written within the retries and the deadline: none of their changes is
    applied and the pipeline reports the earliest of them to Lambda. ``poison`` changes can never be
    applied (mapping errors, oversized documents, bad versions) and go to the dead-letter store.
    """

    applied: int = 0
    stale: int = 0
    failed: dict[str, str] = field(default_factory=dict)
    poison: list[tuple[Change, str]] = field(default_factory=list)
    requests: int = 0

    def merge(self, other: SinkResult) -> None:
        self.applied += other.applied
        self.stale += other.stale
        self.failed.update(other.failed)
        self.poison.extend(other.poison)
        self.requests += other.requests


class Sink(ABC, Generic[P]):
    """Applies item changes of one projection to its store, exactly once in effect."""

    @abstractmethod
    def apply(self, projection: P, items: Sequence[ItemChanges], deadline: Deadline) -> SinkResult:
        """Read the stored state of ``items``, fold their changes, write what is newer, report the rest."""
