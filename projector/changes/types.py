"""The engine's unit of work: one change to one item, with where it came from."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Any


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
    #: Decodes ``old_image`` on first read, when ``defer_old_image`` left it out (see ``__getattr__``).
    _old_image_source: Callable[[], dict[str, Any] | None] | None = field(
        default=None, init=False, repr=False, compare=False
    )

    def defer_old_image(self, source: Callable[[], dict[str, Any] | None]) -> None:
        """Leave ``old_image`` undecoded until something reads it: most changes never do.

        ``source`` must not fail (the builder checked the image first). Reading ``old_image`` then costs
        nothing more than an attribute, except the first read; ``dataclasses.replace`` reads it too.
        """
        self._old_image_source = source
        del self.old_image  # an empty slot: the next read goes to __getattr__

    if not TYPE_CHECKING:  # hidden from mypy, which would otherwise accept any attribute name

        def __getattr__(self, name: str) -> Any:
            # Only called for an empty slot. Two threads may both decode; each gets an equal image.
            source = self._old_image_source if name == "old_image" else None
            if source is None:
                raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")
            image = source()
            self.old_image = image
            return image

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
