"""The store of aggregate projections: contribution records and group rows in one DynamoDB table.

A build is a generation (``g{N}``) named by the projection's meta row. ``begin_rebuild`` adds a fresh
generation to the write set, ``finish_rebuild`` swaps reads to it with one compare-and-set of the meta
row and records the generation it replaced, with its definition hash, in a history row
``{projection}#history`` / ``g{N}`` (a key the writer never reads or writes): the meta row forgets the
replaced generation once the next rebuild begins, the history row lets ``rollback`` find it later.
Tombstone records, which no scan sees, are carried into the new generation at begin and before the swap.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, ClassVar

from projector.changes.batch import ItemChanges, SinkResult
from projector.projection.base import AggregateProjection
from projector.retry import Deadline
from projector.retry.batch_get import batch_get_consistent
from projector.sinks.aggregates.calls import Calls
from projector.sinks.aggregates.carryover import carry_tombstones
from projector.sinks.aggregates.keys import generation_sk, item_pk, key
from projector.sinks.aggregates.numbers import number
from projector.sinks.aggregates.records import decode_record
from projector.sinks.aggregates.table import AggregateTable, Meta, RebuildError, write_meta
from projector.sinks.aggregates.writer import AggregateSink
from projector.stores.base import Layout, ProjectionStore, WouldWrite
from projector.versioning import fold, scheme_for

if TYPE_CHECKING:
    from projector.config.settings import Settings
    from projector.sinks.aggregates.plans import AggregateResult
    from projector.stores.base import Connections
    from projector.versioning.state import ItemState

logger = logging.getLogger(__name__)


class AggregateStore(ProjectionStore[AggregateProjection]):
    """Exact group rows of every aggregate projection, one generation per build."""

    kind: ClassVar[str] = "aggregate"
    would_write_fields: ClassVar[tuple[str, ...]] = ("items_contributing", "groups")

    def __init__(self, client: Any, settings: Settings, *, writer: AggregateSink | None = None) -> None:
        self.client = client
        self.settings = settings
        self.table_name = settings.aggregates_table
        self.writer = writer or AggregateSink(client, settings)

    @classmethod
    def open(cls, connections: Connections) -> AggregateStore:
        return cls(connections.dynamodb(), connections.settings)

    @classmethod
    def preview(
        cls, projection: AggregateProjection, items: Sequence[ItemChanges], tally: WouldWrite
    ) -> SinkResult:
        result = SinkResult()
        scheme = scheme_for(projection.version)
        groups = tally.distinct.setdefault("groups", set())
        for entry in items:
            folded = fold(
                scheme,
                None,
                entry.changes,
                lambda change: projection.contributions(change.image),  # type: ignore[arg-type]  # never a REMOVE
                projection.keep_expired,
            )
            result.poison.extend(folded.poison)
            result.stale += len(folded.stale)
            if folded.state is None:
                continue
            result.applied += len(folded.applied)
            if folded.output:
                tally.counts["items_contributing"] += 1
                groups.update(folded.output)
        return result

    def apply(
        self, projection: AggregateProjection, items: Sequence[ItemChanges], deadline: Deadline
    ) -> AggregateResult:
        return self.writer.apply(projection, items, deadline)

    def table(self) -> AggregateTable:
        """The meta-row primitives (one compare-and-set per step)."""
        return AggregateTable(self.client, self.settings)

    def read_generation(self, projection: AggregateProjection) -> int:
        return self.table().meta(projection).read_generation

    def read_states(
        self, projection: AggregateProjection, item_ids: Sequence[str], build: str | None = None
    ) -> dict[str, ItemState]:
        """The version state of each item's contribution record (consistent reads)."""
        generation = int(build[1:]) if build else self.read_generation(projection)
        calls = Calls(self.client, Deadline.never())
        found: dict[str, ItemState] = {}
        ids = list(dict.fromkeys(item_ids))

        def on_item(raw: dict[str, Any]) -> None:
            found[raw["item_id"]["S"]] = decode_record(raw).state

        keys = [key(item_pk(projection.name, item_id), generation_sk(generation)) for item_id in ids]
        batch_get_item = functools.partial(calls, "batch_get_item")
        batch_get_consistent(
            batch_get_item, self.table_name, keys, on_item, calls.deadline, f"{projection.name} record reads"
        )
        return found

    def describe(self, projection: AggregateProjection) -> Layout:
        described = self.table().describe(projection)
        return Layout(
            projection.name,
            self.kind,
            generation_sk(described.read_generation),
            tuple(generation_sk(g) for g in described.write_generations),
            generation_sk(described.building_generation) if described.building_generation else None,
            described.needs_rebuild,
            {"stored_hash": described.stored_hash, "code_hash": described.code_hash},
        )

    # rebuilds ---------------------------------------------------------------------------------------------
    def begin_rebuild(self, projection: AggregateProjection) -> str:
        target = generation_sk(self.table().begin_rebuild(projection))
        self.carry_over(projection)
        return target

    def carry_over(self, projection: AggregateProjection) -> dict[str, Any]:
        meta = self.table().meta(projection)
        building = meta.building_generation
        if building is None:
            return {}
        copied, present = carry_tombstones(
            self.client, self.table_name, projection, meta.read_generation, building
        )
        return {"tombstones": copied, "present": present}

    def finish_rebuild(self, projection: AggregateProjection) -> str:
        self.carry_over(projection)
        table = self.table()
        before = table.meta(projection)
        generation = table.finish_rebuild(projection)
        self._record_history(projection, generation, before)
        return generation_sk(generation)

    def rollback(self, projection: AggregateProjection) -> str:
        table = self.table()
        meta = table.meta(projection)
        if meta.rebuilding:
            table.rollback(projection)
            return generation_sk(meta.read_generation)
        # The generation the last rebuild replaced: still written (exact) until the next rebuild begins;
        # the history row names it (and its definition) for as long as the table keeps it.
        history = self._history(projection, meta.read_generation)
        generation = meta.previous_generation or (history[0] if history else None)
        if generation is None:
            raise RebuildError(
                f"{projection.name}: no record of the generation before g{meta.read_generation} "
                "(it was not built by `projector backfill --rebuild`): nothing to roll back to"
            )
        definition_hash = history[1] if history and history[0] == generation else None
        updated = Meta(
            read_generation=generation,
            write_generations=(generation,),
            last_generation=meta.last_generation,
            definition_hash=definition_hash,
        )
        if not write_meta(self._calls(), self.table_name, projection, meta, updated):
            raise RebuildError(f"{projection.name}: meta row changed while rolling back; try again")
        exact = generation in meta.write_generations
        logger.warning(
            "%s rolled back from g%d to g%d%s",
            projection.name,
            meta.read_generation,
            generation,
            "" if exact else ", which missed the changes written since: run projector verify --repair",
        )
        return generation_sk(generation)

    def build_started_at(self, projection: AggregateProjection, build: str) -> float | None:
        return None  # a generation is a number in the meta row: it has no date

    # history of finished rebuilds ------------------------------------------------------------------------
    def _calls(self) -> Calls:
        return Calls(self.client, Deadline.never())

    def _history_key(self, projection: AggregateProjection, generation: int) -> dict[str, Any]:
        return key(f"{projection.name}#history", generation_sk(generation))

    def _record_history(self, projection: AggregateProjection, generation: int, before: Meta) -> None:
        item = {
            **self._history_key(projection, generation),
            "previous_generation": number(before.read_generation),
            "finished_at": number(int(time.time())),
        }
        if before.definition_hash:
            item["previous_hash"] = {"S": before.definition_hash}
        self._calls()("put_item", TableName=self.table_name, Item=item)

    def _history(self, projection: AggregateProjection, generation: int) -> tuple[int, str | None] | None:
        found = self._calls()(
            "get_item",
            TableName=self.table_name,
            ConsistentRead=True,
            Key=self._history_key(projection, generation),
        ).get("Item")
        if not found:
            return None
        return int(found["previous_generation"]["N"]), found.get("previous_hash", {}).get("S")
