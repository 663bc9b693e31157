"""Stream batches into the one apply path: parse each record, decode it, apply the batch.

A malformed record is dead-lettered whole through the same rule as poison, never the batch; the others
go on. Used by the Lambda handler (and so the local runner) and by redrives of stream letters.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from projector.changes.builders import change_from_record
from projector.pipeline.apply import StoreFor, apply_changes
from projector.pipeline.outcome import BatchOutcome
from projector.pipeline.poison import DeadLetterRule
from projector.records import MalformedRecordError, parse_record

if TYPE_CHECKING:
    from projector.changes.types import Change
    from projector.deadletters.store import DeadLetterStore
    from projector.projection.base import Projection
    from projector.retry.deadline import Deadline

logger = logging.getLogger(__name__)


class StreamApplier:
    """Applies Lambda-shaped DynamoDB stream batches to projections through ``apply_changes``."""

    def __init__(
        self,
        projections: Sequence[Projection],
        store_for: StoreFor,
        dead_letters: DeadLetterStore,
        parallel: bool = True,
    ) -> None:
        self.projections = tuple(projections)
        self.store_for = store_for
        self.dead_letters = DeadLetterRule(dead_letters)
        self.parallel = parallel

    def apply(
        self,
        records: Sequence[Any],
        deadline: Deadline,
        only: Iterable[str] | None = None,
        redrive: bool = False,
    ) -> BatchOutcome:
        """Apply ``records`` to every projection, or to the ``only`` ones.

        In a ``redrive`` poison is reported as a failure instead of stored again.
        """
        rule = DeadLetterRule.redrive() if redrive else self.dead_letters
        outcome = BatchOutcome(records=len(records))
        changes = parse_records(records, rule, outcome)
        wanted = None if only is None else set(only)
        projections = [p for p in self.projections if wanted is None or p.name in wanted]
        return apply_changes(
            changes, projections, self.store_for, deadline, rule, outcome, parallel=self.parallel
        )


def parse_records(
    records: Sequence[Any], dead_letters: DeadLetterRule, outcome: BatchOutcome
) -> list[Change]:
    """The changes of ``records`` in order; a malformed record goes to ``dead_letters`` instead."""
    changes: list[Change] = []
    now = time.time()
    for index, raw in enumerate(records):
        try:
            change = change_from_record(
                parse_record(raw, index), index, raw if isinstance(raw, dict) else None
            )
        except MalformedRecordError as error:
            logger.warning("malformed record %d dead-lettered: %s", index, error)
            letter = dead_letters.letter(raw, "malformed", str(error), sequence=error.sequence_number)
            dead_letters.settle(outcome, index, f"record {index}", letter)
            continue
        if outcome.first_sequence is None:
            outcome.first_sequence = change.sequence_number
        outcome.last_sequence = change.sequence_number
        if change.expired:
            outcome.expired_deletes += 1
        if change.position is not None:
            lag = max(0.0, now - change.position.created_at)
            outcome.max_lag_s = lag if outcome.max_lag_s is None else max(outcome.max_lag_s, lag)
        changes.append(change)
    return changes
