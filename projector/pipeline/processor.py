"""Apply one batch of stream records to every projection, in stream order per item.

The batch is parsed record by record (a malformed record is dead-lettered whole, never the batch), then
each projection's sink gets the changes grouped per item. Anything a sink could not apply marks the
first of its records as failed; Lambda resends from the earliest failed record, and everything already
applied after it is re-applied harmlessly because every write is versioned.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from projector.changes.builders import change_from_record
from projector.changes.types import Change
from projector.deadletters.types import DeadLetter
from projector.logsafe import describe, loggable, projection_scope
from projector.pipeline.outcome import BatchOutcome
from projector.projection.base import AggregateProjection, DocumentProjection, Projection
from projector.records import MalformedRecordError, parse_record
from projector.sinks.base import ItemChanges, Sink, SinkResult

if TYPE_CHECKING:
    from projector.deadletters.store import DeadLetterStore
    from projector.projection.registry import Registry
    from projector.retry.deadline import Deadline

logger = logging.getLogger(__name__)


class BatchProcessor:
    """Runs batches through the projections; shared by the Lambda handler, the runner and redrives."""

    def __init__(
        self,
        registry: Registry,
        document_sink: Sink[DocumentProjection] | None,
        aggregate_sink: Sink[AggregateProjection] | None,
        dead_letters: DeadLetterStore,
        parallel: bool = True,
        event_sink: Sink[Any] | None = None,
    ) -> None:
        self.registry = registry
        self.document_sink = document_sink
        self.aggregate_sink = aggregate_sink
        self.dead_letters = dead_letters
        self.parallel = parallel
        self.event_sink = event_sink  # events hook: the sink of event stream projections

    def process(
        self,
        raw_records: Sequence[Any],
        deadline: Deadline,
        only: Iterable[str] | None = None,
        dead_letter: bool = True,
    ) -> BatchOutcome:
        """Apply ``raw_records`` (Lambda-shaped) to every projection, or to the ``only`` ones.

        With ``dead_letter=False`` (a redrive) poison is reported as a failure instead of stored again.
        """
        outcome = BatchOutcome(records=len(raw_records), store_poison=dead_letter)
        changes = self._parse(raw_records, outcome)
        projections = [p for p in self.registry.all if only is None or p.name in set(only)]
        if changes and projections:
            self._apply(projections, changes, deadline, outcome)
        return outcome

    def _parse(self, raw_records: Sequence[Any], outcome: BatchOutcome) -> list[Change]:
        changes: list[Change] = []
        now = time.time()
        for index, raw in enumerate(raw_records):
            try:
                record = parse_record(raw, index)
                change = change_from_record(record, index, raw if isinstance(raw, dict) else None)
            except MalformedRecordError as error:
                logger.warning("malformed record %d dead-lettered: %s", index, error)
                self._dead_letter(
                    outcome,
                    index,
                    error.sequence_number,
                    DeadLetter(
                        reason="malformed",
                        error=str(error),
                        sequence_number=error.sequence_number,
                        event_source_arn=_arn(raw),
                        record=raw,
                    ),
                )
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

    def _apply(
        self, projections: list[Projection], changes: list[Change], deadline: Deadline, outcome: BatchOutcome
    ) -> None:
        jobs = [(projection, self._sink_for(projection)) for projection in projections]
        grouped = {projection.name: group_by_item(projection, changes) for projection in projections}

        def run(job: tuple[Projection, Sink]) -> tuple[Projection, SinkResult]:
            projection, sink = job
            with projection_scope(projection.name):
                return projection, sink.apply(projection, grouped[projection.name], deadline)

        if self.parallel and len(jobs) > 1:
            with ThreadPoolExecutor(max_workers=min(4, len(jobs)), thread_name_prefix="sink") as pool:
                results = list(pool.map(run, jobs))
        else:
            results = [run(job) for job in jobs]
        applied_everywhere: set[int] = {change.batch_index for change in changes}
        for projection, result in results:
            items = {item.item_id: item for item in grouped[projection.name]}
            outcome.requests += result.requests
            outcome.gap_reads += getattr(result, "gap_reads", 0)  # events hook
            unapplied = getattr(result, "unapplied", {})  # events hook: a stream's first unapplied record
            for item_id, error in result.failed.items():
                item = items[item_id]
                applied_everywhere.difference_update(change.batch_index for change in item.changes)
                first = unapplied.get(item_id) or item.changes[0]
                outcome.fail_at(first.batch_index, first.sequence_number, f"{projection.name}: {error}")
            for change, error in result.poison:
                logger.warning(
                    "poison change at record %d for %s dead-lettered: %s",
                    change.batch_index,
                    projection.name,
                    loggable(error),
                )
                self._dead_letter(
                    outcome,
                    change.batch_index,
                    change.sequence_number,
                    DeadLetter(
                        reason="poison",
                        projection=projection.name,
                        error=error,
                        sequence_number=change.sequence_number,
                        event_source_arn=_arn(change.record),
                        record=change.record,
                    ),
                )
            outcome.stale += result.stale
        outcome.applied = len([c for c in changes if c.batch_index in applied_everywhere])

    def _sink_for(self, projection: Projection) -> Sink:
        if getattr(projection, "kind", None) == "event_stream":  # events hook
            sink = self.event_sink
        else:
            sink = self.document_sink if isinstance(projection, DocumentProjection) else self.aggregate_sink
        if sink is None:
            raise RuntimeError(f"no sink configured for projection {projection.name!r}")
        return sink

    def _dead_letter(
        self, outcome: BatchOutcome, index: int, sequence: str | None, letter: DeadLetter
    ) -> None:
        if not outcome.store_poison:
            outcome.fail_at(index, sequence, letter.error)
            return
        try:
            self.dead_letters.put(letter)
            outcome.dead_lettered += 1
        except Exception as error:  # the record is not safe anywhere: Lambda must resend it
            logger.error("dead-letter store failed for record %d: %s", index, loggable(describe(error)))
            if sequence is None:
                raise
            outcome.fail_at(index, sequence, f"dead-letter store failed: {error}")


def group_by_item(projection: Projection, changes: Sequence[Change]) -> list[ItemChanges]:
    """Changes per item, items in order of first appearance, changes in stream order."""
    items: dict[str, ItemChanges] = {}
    for change in changes:
        item_id = projection.item_id(change.keys)
        entry = items.get(item_id)
        if entry is None:
            items[item_id] = ItemChanges(item_id=item_id, changes=[change])
        else:
            entry.changes.append(change)
    return list(items.values())


def _arn(raw: Any) -> str | None:
    return raw.get("eventSourceARN") if isinstance(raw, dict) else None
