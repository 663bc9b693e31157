"""One item's progress through the OpenSearch sink against one physical index, and the batch summary.

Split from the writer, which imports these under private names, so that it reads as the request flow.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import Enum
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from opensearchpy.exceptions import TransportError

    from projector.changes.batch import ItemChanges, SinkResult
    from projector.changes.types import Change
    from projector.versioning import FoldResult, ItemState


class Status(Enum):
    PENDING = "pending"
    WRITTEN = "written"
    UNCHANGED = "unchanged"
    SUPERSEDED = "superseded"
    FAILED = "failed"


@dataclass(eq=False, slots=True)
class ItemWrite:
    """One item's progress against one physical index."""

    entry: ItemChanges
    stored: ItemState | None = None
    read_tombstone: ItemState | None = None  # the tombstone this target held when first read
    rejected: list[tuple[Change, str]] = field(default_factory=list)  # refused by OpenSearch on write
    folded: FoldResult[bytes] | None = None  # its output: the bulk lines of the item's write
    line: bytes | None = None
    conflicts: int = 0
    status: Status = Status.PENDING
    error: str = ""

    @property
    def item_id(self) -> str:
        return self.entry.item_id

    @property
    def poison(self) -> list[tuple[Change, str]]:
        return self.rejected + (self.folded.poison if self.folded else [])

    def counts(self) -> tuple[int, int]:
        """(applied, stale) changes; an item that lost a version race counts all its changes stale."""
        if self.folded is None:
            return 0, 0
        applied, stale = len(self.folded.applied), len(self.folded.stale)
        return (applied, stale) if self.status is Status.WRITTEN else (0, applied + stale)


def landed(write: ItemWrite) -> bool:
    """After a version conflict: whether the stored state is ours (an earlier attempt had landed)."""
    if write.folded is None or write.folded.state is None or write.stored != write.folded.state:
        return False
    write.status = Status.WRITTEN
    return True


def refusal(error: TransportError) -> str:
    """Status and error type of a refused request; never its reason text, which may quote item values."""
    return f"{error.status_code} {error.error}"


def reason_of(error: dict[str, Any]) -> str:
    text = f"{error.get('type', 'error')}: {error.get('reason', '')}"
    cause = error.get("caused_by")
    if isinstance(cause, dict):
        return f"{text} (caused by {cause.get('type')}: {cause.get('reason')})"
    return text


def summarise(
    items: Sequence[ItemChanges], targets: list[str], runs: list[dict[str, ItemWrite]], result: SinkResult
) -> None:
    """Counts come from the index serving reads; an item failed on any index is failed (it will be resent)."""
    for entry in items:
        writes = [run[entry.item_id] for run in runs]
        failed = [
            (target, write)
            for target, write in zip(targets, writes, strict=True)
            if write.status is Status.FAILED
        ]
        if failed:
            target, write = failed[0]
            result.failed[entry.item_id] = write.error if len(targets) == 1 else f"{target}: {write.error}"
            continue
        seen: set[int] = set()
        for write in writes:
            for change, reason in write.poison:
                if id(change) not in seen:
                    seen.add(id(change))
                    result.poison.append((change, reason))
        applied, stale = writes[0].counts()
        result.applied += applied
        result.stale += stale
