"""The one rule for a record that can never be applied: keep it whole as a dead letter, or fail it.

Malformed stream records, undecodable scanned items, changes a store rejects as poison and (in the
local runner) records whose retries are exhausted all end here. A letter holds the whole record, the
reason, the projection and the error. During a redrive the letter is already stored, so poison is
reported as a failure instead of stored again. When the dead-letter store itself fails, the record is
safe nowhere: it becomes a failure that blocks the checkpoint (Lambda resends it) and is never lost.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, Literal

from projector.deadletters.types import DeadLetter
from projector.jsonsafe import jsonable
from projector.logsafe import describe, loggable

if TYPE_CHECKING:
    from projector.deadletters.store import DeadLetterStore
    from projector.pipeline.outcome import BatchOutcome, Tally

logger = logging.getLogger(__name__)

Reason = Literal["malformed", "poison", "retries_exhausted"]


class DeadLetterRule:
    """Where poison goes: ``store`` None means a redrive (report it; the letter already exists).

    A letter keeps the record as JSON: scanned items carry bytes, which become base64 text as the
    stream has them (stream records are JSON already and stay as they are).
    """

    def __init__(self, store: DeadLetterStore | None) -> None:
        self.store = store

    @classmethod
    def redrive(cls) -> DeadLetterRule:
        """Poison is a failure: a redriven letter stays where it is until it applies."""
        return cls(None)

    def letter(
        self,
        record: Any,
        reason: Reason,
        error: str,
        projection: str | None = None,
        sequence: str | None = None,
    ) -> DeadLetter:
        """The whole record with why it cannot be applied (and where it came from, for stream records)."""
        return DeadLetter(
            reason=reason,
            projection=projection,
            error=error,
            sequence_number=sequence,
            event_source_arn=_arn(record),
            record=jsonable(record),
        )

    def keep(self, letter: DeadLetter) -> str | None:
        """Store ``letter``: None once it is safe, else why the record is still only where it came from."""
        if self.store is None:
            return letter.error
        try:
            where = self.store.put(letter)
        except Exception as error:  # the record is not safe anywhere: it must stay a failure
            logger.error(
                "dead-letter store failed for %s: %s",
                letter.sequence_number or letter.id,
                loggable(describe(error)),
            )
            return f"dead-letter store failed: {describe(error)}"
        logger.debug("dead letter %s stored at %s", letter.id, where)
        return None

    def settle(
        self,
        outcome: BatchOutcome,
        index: int,
        key: str,
        letter: DeadLetter,
        tally: Tally | None = None,
    ) -> bool:
        """Keep ``letter`` for record ``index``, or mark the record failed in ``outcome``; True: kept."""
        failure = self.keep(letter)
        if failure is None:
            outcome.dead_lettered += 1
            if tally is not None:
                tally.poison += 1
            return True
        outcome.fail(index, letter.sequence_number, key, failure)
        return False


def _arn(record: Any) -> str | None:
    """A stream record's source (a scanned item's attribute of that name is a typed value, not a str)."""
    arn = record.get("eventSourceARN") if isinstance(record, dict) else None
    return arn if isinstance(arn, str) else None
