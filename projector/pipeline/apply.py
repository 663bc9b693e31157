"""The one apply path: decoded changes to every projection's store, in stream order per item.

Stream batches (the Lambda handler, the local runner through it, redrives of stream letters) and
scanned pages (backfills, rebuilds and repairs, redrives of backfill letters) come here once their
records are decoded into changes. Each projection's store gets the changes grouped per item. An item a
store could not write marks the earliest of its records as failed; Lambda resends from the earliest
failed record and a page with a failure is not checkpointed, and whatever was applied after it is
re-applied harmlessly because every write is versioned. Poison follows the one dead-letter rule.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, Protocol

from projector.changes.batch import ItemChanges, SinkResult
from projector.logsafe import loggable, projection_scope
from projector.pipeline.outcome import BatchOutcome, Tally

if TYPE_CHECKING:
    from projector.changes.types import Change
    from projector.pipeline.poison import DeadLetterRule
    from projector.projection.base import Projection
    from projector.retry.deadline import Deadline

logger = logging.getLogger(__name__)


class AppliesChanges(Protocol):
    """The part of a projection's store the apply path uses (every ProjectionStore, test fakes)."""

    def apply(self, projection: Any, items: Sequence[ItemChanges], deadline: Deadline) -> SinkResult: ...


#: The store of a projection (the runtime answers it; tests pass in-memory ones).
StoreFor = Callable[["Projection"], AppliesChanges]

MAX_PARALLEL_STORES = 4


def apply_changes(
    changes: Sequence[Change],
    projections: Sequence[Projection],
    store_for: StoreFor,
    deadline: Deadline,
    dead_letters: DeadLetterRule,
    outcome: BatchOutcome | None = None,
    parallel: bool = True,
) -> BatchOutcome:
    """Apply ``changes`` (``batch_index`` = their record's index) to ``projections``; report into ``outcome``.

    ``outcome`` may already hold what happened while decoding (malformed records); it is returned.
    With ``parallel`` the projections' stores are written concurrently (each keeps its own order).
    """
    outcome = outcome if outcome is not None else BatchOutcome(records=len(changes))
    for projection in projections:
        outcome.per_projection.setdefault(projection.name, Tally())
    if not changes or not projections:
        return outcome
    grouped = {projection.name: group_by_item(projection, changes) for projection in projections}
    jobs = [(projection, store_for(projection)) for projection in projections]

    def run(job: tuple[Projection, AppliesChanges]) -> tuple[Projection, SinkResult]:
        projection, store = job
        with projection_scope(projection.name):
            return projection, store.apply(projection, grouped[projection.name], deadline)

    if parallel and len(jobs) > 1:
        workers = min(MAX_PARALLEL_STORES, len(jobs))
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="store") as pool:
            results = list(pool.map(run, jobs))
    else:
        results = [run(job) for job in jobs]

    applied_everywhere = {change.batch_index for change in changes}
    for projection, result in results:
        items = {item.item_id: item for item in grouped[projection.name]}
        tally = outcome.per_projection[projection.name]
        tally.written += result.applied
        tally.stale += result.stale
        tally.requests += result.requests
        tally.failed += len(result.failed)
        outcome.stale += result.stale
        outcome.requests += result.requests
        outcome.gap_reads += result.gap_reads
        for item_id, error in result.failed.items():
            item = items[item_id]
            applied_everywhere.difference_update(change.batch_index for change in item.changes)
            first = result.unapplied.get(item_id) or item.changes[0]
            outcome.fail(first.batch_index, first.sequence_number, f"{projection.name}:{item_id}", error)
        for change, error in result.poison:
            logger.warning(
                "poison change at record %d for %s dead-lettered: %s",
                change.batch_index,
                projection.name,
                loggable(error),
            )
            letter = dead_letters.letter(
                change.record,
                "poison",
                error,
                projection=projection.name,
                sequence=change.sequence_number,
            )
            key = f"{projection.name}:{projection.item_id(change.keys)}"
            if not dead_letters.settle(outcome, change.batch_index, key, letter, tally):
                applied_everywhere.discard(change.batch_index)
    outcome.applied += sum(1 for change in changes if change.batch_index in applied_everywhere)
    return outcome


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
