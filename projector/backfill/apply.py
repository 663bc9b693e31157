"""One scanned page into the one apply path: decode, stamp as upserts, then ``apply_changes``.

Scanned items become upserts stamped with the scan's start and the page's request time; the version
rules rank them against whatever the stream has written (see ``projector.versioning``), so a race
with a live change always ends on the newer state. Poison goes to the dead letters with the scanned
item as DynamoDB JSON; items a store could not write are reported so the page is not checkpointed.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from projector.changes.builders import change_from_item
from projector.changes.types import BackfillStamp, Change
from projector.pipeline.apply import AppliesChanges, apply_changes
from projector.pipeline.outcome import BatchOutcome
from projector.pipeline.poison import DeadLetterRule
from projector.records import DecodeError, decode_image
from projector.retry import Deadline

if TYPE_CHECKING:
    from projector.deadletters.store import DeadLetterStore
    from projector.projection.base import Projection
    from projector.source.scanner import Page

logger = logging.getLogger(__name__)


class PageApplier:
    """Applies pages of one run to the selected projections (the stores are shared by the workers)."""

    def __init__(
        self,
        projections: Sequence[Projection],
        sinks: Mapping[str, AppliesChanges],
        key_attributes: tuple[str, ...],
        scan_started_at: float,
        dead_letters: DeadLetterStore | None,
    ) -> None:
        """``dead_letters`` None (a redrive): poison is reported as a failure instead of stored again."""
        self.projections = list(projections)
        self.sinks = sinks
        self.key_attributes = key_attributes
        self.scan_started_at = scan_started_at
        self.dead_letters = DeadLetterRule(dead_letters)

    def apply(self, page: Page) -> BatchOutcome:
        """The page's outcome: per-projection tallies; any failure means the page is read again."""
        outcome = BatchOutcome(records=len(page.items))
        changes = self._changes(page, outcome)
        return apply_changes(
            changes,
            self.projections,
            self._store_for,
            Deadline.never(),
            self.dead_letters,
            outcome,
            parallel=False,  # the run's segment workers are the parallelism
        )

    def _store_for(self, projection: Projection) -> AppliesChanges:
        return self.sinks[projection.name]

    def _changes(self, page: Page, outcome: BatchOutcome) -> list[Change]:
        stamp = BackfillStamp(scan_started_at=self.scan_started_at, read_at=page.read_at)
        changes: list[Change] = []
        for index, raw in enumerate(page.items):
            try:
                item = decode_image(raw)
            except DecodeError as error:  # cannot happen with DynamoDB's own JSON, but never stop a run on it
                letter = self.dead_letters.letter(raw, "malformed", f"undecodable item: {error}")
                self.dead_letters.settle(outcome, index, f"item {index}", letter)
                continue
            changes.append(change_from_item(item, self.key_attributes, stamp, batch_index=index, raw=raw))
        return changes
