"""The engine's unit of work: one change to one item, with where it came from."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class ChangeKind(StrEnum):
    INSERT = "INSERT"
    MODIFY = "MODIFY"
    REMOVE = "REMOVE"


@dataclass(frozen=True, slots=True)
class StreamPosition:
    """Where a change sits in the stream: the record's creation time and sequence number."""

    created_at: float
    sequence: str

    @property
    def sort_key(self) -> str:
        """A string that sorts like the stream: whole seconds first, then the sequence number."""
        return f"{int(self.created_at):012d}:{int(self.sequence):040d}"

    @staticmethod
    def seconds_of(sort_key: str) -> int:
        return int(sort_key.split(":", 1)[0])


@dataclass(frozen=True, slots=True)
class BackfillStamp:
    """When a scanned item was read: the scan's start and the page's request time (epoch seconds)."""

    scan_started_at: float
    read_at: float


@dataclass(slots=True)
class Change:
    """One change to one item. Exactly one of ``position`` (stream) and ``backfill`` (scan) is set."""

    keys: dict[str, Any]
    kind: ChangeKind
    new_image: dict[str, Any] | None
    old_image: dict[str, Any] | None
    position: StreamPosition | None = None
    backfill: BackfillStamp | None = None
    expired: bool = False
    record: dict[str, Any] | None = field(default=None, repr=False)
    batch_index: int = 0

    @property
    def image(self) -> dict[str, Any] | None:
        """The item as this change leaves it (None after a REMOVE)."""
        return None if self.kind is ChangeKind.REMOVE else self.new_image

    @property
    def sequence_number(self) -> str | None:
        return self.position.sequence if self.position else None

    @property
    def happened_at(self) -> float:
        if self.position is not None:
            return self.position.created_at
        assert self.backfill is not None
        return self.backfill.read_at
