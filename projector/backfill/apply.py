"""One scanned page through the same sinks as the stream: decode, stamp, group per item, apply.

Scanned items become upserts stamped with the scan's start and the page's request time; the version
rules rank them against whatever the stream has written (see ``projector.versioning``), so a race
with a live change always ends on the newer state. Poison goes to the dead letters with the scanned
item as DynamoDB JSON; items a sink could not write are reported so the page is not checkpointed.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from projector.changes.builders import change_from_item
from projector.changes.types import BackfillStamp, Change
from projector.deadletters.types import DeadLetter
from projector.jsonsafe import jsonable
from projector.pipeline.processor import group_by_item
from projector.records import DecodeError, decode_image
from projector.retry import Deadline

if TYPE_CHECKING:
    from projector.backfill.scanner import Page
    from projector.deadletters.store import DeadLetterStore
    from projector.projection.base import Projection
    from projector.sinks.base import Sink

logger = logging.getLogger(__name__)


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
class PageOutcome:
    """What became of one page, per projection; ``failures`` (item id: reason) block the checkpoint."""

    items: int = 0
    per_projection: dict[str, Tally] = field(default_factory=dict)
    failures: dict[str, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.failures


class PageApplier:
    """Applies pages of one run to the selected projections (the sinks are shared by the workers)."""

    def __init__(
        self,
        projections: Sequence[Projection],
        sinks: dict[str, Sink],
        key_attributes: tuple[str, ...],
        scan_started_at: float,
        dead_letters: DeadLetterStore | None,
    ) -> None:
        """``dead_letters`` None (a redrive): poison is reported as a failure instead of stored again."""
        self.projections = list(projections)
        self.sinks = sinks
        self.key_attributes = key_attributes
        self.scan_started_at = scan_started_at
        self.dead_letters = dead_letters

    def apply(self, page: Page) -> PageOutcome:
        outcome = PageOutcome(items=len(page.items))
        changes = self._changes(page, outcome)
        for projection in self.projections:
            tally = outcome.per_projection.setdefault(projection.name, Tally())
            if not changes:
                continue
            result = self.sinks[projection.name].apply(
                projection, group_by_item(projection, changes), Deadline.never()
            )
            tally.written += result.applied
            tally.stale += result.stale
            tally.requests += result.requests
            tally.failed += len(result.failed)
            for item_id, reason in result.failed.items():
                outcome.failures[f"{projection.name}:{item_id}"] = reason
            for change, reason in result.poison:
                if self._dead_letter(outcome, projection.name, change.record, reason):
                    tally.poison += 1
        return outcome

    def _changes(self, page: Page, outcome: PageOutcome) -> list[Change]:
        stamp = BackfillStamp(scan_started_at=self.scan_started_at, read_at=page.read_at)
        changes: list[Change] = []
        for index, raw in enumerate(page.items):
            try:
                item = decode_image(raw)
            except DecodeError as error:  # cannot happen with DynamoDB's own JSON, but never stop a run on it
                self._dead_letter(outcome, None, raw, f"undecodable item: {error}")
                continue
            changes.append(change_from_item(item, self.key_attributes, stamp, batch_index=index, raw=raw))
        return changes

    def _dead_letter(self, outcome: PageOutcome, projection: str | None, raw: Any, reason: str) -> bool:
        if self.dead_letters is None:
            outcome.failures[f"{projection}:poison"] = reason
            return False
        letter = DeadLetter(reason="poison", projection=projection, error=reason, record=jsonable(raw))
        try:
            self.dead_letters.put(letter)
            return True
        except Exception as error:  # not safe anywhere: the page must be read again
            logger.error("dead-letter store failed: %s: %s", type(error).__name__, error)
            outcome.failures[f"{projection}:dead-letter"] = f"dead-letter store failed: {error}"
            return False
