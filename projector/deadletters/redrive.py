"""Replay dead letters through the same versioned path, so a late redrive never regresses newer state."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

from projector.logsafe import loggable
from projector.retry.deadline import Deadline

if TYPE_CHECKING:
    from projector.deadletters.types import DeadLetter
    from projector.runtime import Runtime

logger = logging.getLogger(__name__)


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
            redriven, error = _replay(runtime, letter)
            if redriven:
                store.mark_redriven(letter)
        except Exception as failure:  # one letter never stops the redrive of the others
            redriven, error = False, f"{type(failure).__name__}: {failure}"
        if not redriven:
            logger.info("dead letter %s still fails: %s", letter.id, loggable(error))
        yield RedriveResult(letter, redriven, error)
    for bad in store.skipped:
        yield RedriveResult(None, False, f"unreadable dead letter {bad.location}: {bad.error}", name=bad.name)


def _replay(runtime: Runtime, letter: DeadLetter) -> tuple[bool, str | None]:
    """A stream record goes through the batch path; a backfill letter re-reads the item it names."""
    from projector.backfill.redrive import is_backfill_letter, redrive_backfill_letter

    if is_backfill_letter(letter):
        return redrive_backfill_letter(runtime, letter)
    only = [letter.projection] if letter.projection else None
    outcome = runtime.processor.process([letter.record], Deadline.after(60), only=only, dead_letter=False)
    if outcome.first_failed is None:
        return True, None
    return False, next(iter(outcome.failures.values()), "not applied")
