"""Redriving dead letters through the one apply path, so a late redrive never regresses newer state.

A stream letter's record is replayed as a one-record stream batch. A backfill letter's record is the
scanned item as DynamoDB JSON, not a stream record, so it cannot be replayed as one: its key is enough.
The item is read again (consistently) and applied as a scanned page, stamped now, so whatever the
stream wrote since still ranks as it should; an item gone from the table has nothing left to apply (its
REMOVE reached the projection through the stream), and the letter counts as redriven. Either way,
poison is reported instead of stored again, and a letter moves to ``redriven`` only once it applies.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

from projector.backfill.apply import PageApplier
from projector.jsonsafe import key_from_json
from projector.logsafe import loggable
from projector.retry.deadline import Deadline
from projector.source.scanner import Page, SourceTable

if TYPE_CHECKING:
    from projector.deadletters.types import DeadLetter
    from projector.pipeline.outcome import BatchOutcome
    from projector.runtime import Runtime

logger = logging.getLogger(__name__)

#: How long a stream letter's replay may take (it is one record).
REPLAY_SECONDS = 60


@dataclass(frozen=True, slots=True)
class RedriveResult:
    letter: DeadLetter | None  # None: an entry that could not be read as a letter (``id`` is its name)
    redriven: bool
    error: str | None
    name: str | None = None

    @property
    def id(self) -> str:
        return self.letter.id if self.letter is not None else str(self.name)


def redrive(runtime: Runtime, letter_ids: set[str] | None = None) -> Iterator[RedriveResult]:
    """Apply each pending letter; a letter that applies (or is now stale) moves to ``redriven``.

    An entry that cannot be read is reported as a failed result and skipped; the others go on.
    """
    store = runtime.dead_letters
    for letter in list(store.list()):
        if letter_ids is not None and letter.id not in letter_ids:
            continue
        try:
            redriven, error = replay(runtime, letter)
            if redriven:
                store.mark_redriven(letter)
        except Exception as failure:  # one letter never stops the redrive of the others
            redriven, error = False, f"{type(failure).__name__}: {failure}"
        if not redriven:
            logger.info("dead letter %s still fails: %s", letter.id, loggable(error))
        yield RedriveResult(letter, redriven, error)
    for bad in store.skipped:
        yield RedriveResult(None, False, f"unreadable dead letter {bad.location}: {bad.error}", name=bad.name)


def replay(runtime: Runtime, letter: DeadLetter) -> tuple[bool, str | None]:
    """Apply one letter's record (redriven, error): a stream record as a batch, a backfill item re-read."""
    if is_backfill_letter(letter):
        return redrive_backfill_letter(runtime, letter)
    only = [letter.projection] if letter.projection else None
    outcome = runtime.stream_applier.apply(
        [letter.record], Deadline.after(REPLAY_SECONDS), only=only, redrive=True
    )
    return _verdict(outcome)


def is_backfill_letter(letter: DeadLetter) -> bool:
    """A letter written by the backfill: its record is an item, not a stream record."""
    record = letter.record
    return isinstance(record, dict) and "dynamodb" not in record and "eventName" not in record


def redrive_backfill_letter(runtime: Runtime, letter: DeadLetter) -> tuple[bool, str | None]:
    """Apply the named item's current state to the letter's projection(s); (redriven, error)."""
    source = SourceTable.describe(runtime.dynamodb, runtime.settings.source_table)
    try:
        key = key_from_json({name: letter.record[name] for name in source.key_attributes})
    except (KeyError, TypeError) as error:
        return False, f"the letter's item has no key {source.key_attributes}: {error}"
    sent_at = time.time()
    found = runtime.dynamodb.get_item(TableName=source.name, Key=key, ConsistentRead=True).get("Item")
    if found is None:
        return True, None
    registry = runtime.registry
    projections = [registry.get(letter.projection)] if letter.projection else list(registry.all)
    stores = {projection.name: runtime.store_for(projection) for projection in projections}
    applier = PageApplier(
        projections, stores, source.key_attributes, scan_started_at=sent_at, dead_letters=None
    )
    return _verdict(applier.apply(Page(segment=0, items=[found], next_key=None, read_at=sent_at)))


def _verdict(outcome: BatchOutcome) -> tuple[bool, str | None]:
    if outcome.first_failed is None:
        return True, None
    return False, next((f"{key}: {reason}" for key, reason in outcome.failures.items()), "not applied")
