"""Zero-downtime rebuilds of both kinds of projection, behind one interface.

Search projections get a new physical index from the current template, added to the write alias so
live stream writes reach it at once; aggregates get a new generation in their meta row. The backfill
fills the new one through the ordinary sinks (which write every write target), then ``finish`` swaps
reads over in one atomic step. Readers see the old index or generation until then.

Tombstones and kept TTL-expired documents, which no scan sees, are copied from the build serving reads
into the new one at begin and again before the swap (``carry_over``), so a deleted item stays deleted
after any number of rebuilds and rollbacks.

After the swap both kinds keep writing the build they replaced (until the next rebuild begins), so a
rollback returns to an exact build. ``finish`` also records an aggregate's replaced generation and its
definition hash in a history row ``{projection}#history`` / ``g{N}`` of the aggregates table (a key the
aggregate sink never reads or writes), which the meta row does not keep.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from projector.projection.base import AggregateProjection, DocumentProjection
from projector.retry import Deadline
from projector.sinks.aggregates.carryover import carry_tombstones
from projector.sinks.aggregates.table import AggregateTable, RebuildError, write_meta
from projector.sinks.aggregates.types import Calls, Meta, generation_sk, key, number
from projector.sinks.opensearch import indexes
from projector.sinks.opensearch.carryover import carry_documents

if TYPE_CHECKING:
    from projector.projection.base import Projection
    from projector.runtime import Runtime

logger = logging.getLogger(__name__)


def kind_of(projection: Projection) -> str:
    return "search" if isinstance(projection, DocumentProjection) else "aggregate"


@dataclass(frozen=True, slots=True)
class Layout:
    """Where a projection's reads and writes go now."""

    projection: str
    kind: str
    read: str | None
    writes: tuple[str, ...]
    building: str | None  # the index or generation a rebuild in progress is filling
    needs_rebuild: bool
    detail: dict[str, Any]

    @property
    def rebuilding(self) -> bool:
        return self.building is not None

    def to_json(self) -> dict[str, Any]:
        return {
            "projection": self.projection,
            "kind": self.kind,
            "read": self.read,
            "writes": list(self.writes),
            "rebuilding": self.rebuilding,
            "building": self.building,
            "needs_rebuild": self.needs_rebuild,
            **self.detail,
        }


class Rebuilds:
    """Begin, finish, roll back and describe rebuilds of any projection of ``runtime``."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.prefix = runtime.settings.index_prefix

    def _table(self) -> AggregateTable:
        return AggregateTable(self.runtime.dynamodb, self.runtime.settings)

    def begin(self, projection: Projection) -> str:
        """Start (or rejoin, same definition) a rebuild; the new index or generation (``g{N}``).

        The new build gets the read build's tombstones (and kept TTL-expired documents) at once, before
        the scan: see ``carry_over``.
        """
        if isinstance(projection, DocumentProjection):
            target = indexes.begin_rebuild(self.runtime.opensearch, projection, self.prefix)
        else:
            target = generation_sk(self._table().begin_rebuild(projection))  # type: ignore[arg-type]
        self.carry_over(projection)
        return target

    def carry_over(self, projection: Projection) -> dict[str, Any]:
        """Copy what a scan cannot see from the build serving reads into the one being built.

        Tombstones (search documents and aggregate contribution records) and, for a ``keep_expired``
        search projection, documents whose item left the table. Only ids the new build lacks are
        written, with the stored versions, so a newer write there always wins. Idempotent; run at begin
        and again just before the swap, so tombstones of every build survive any number of rebuilds.
        """
        layout = self.layout(projection)
        if layout.building is None or layout.read is None:
            return {}
        if isinstance(projection, DocumentProjection):
            gone = self._gone if projection.keep_expired else None
            return carry_documents(
                self.runtime.opensearch, projection, layout.read, layout.building, gone
            ).to_json()
        assert isinstance(projection, AggregateProjection)
        copied, present = carry_tombstones(
            self.runtime.dynamodb,
            self.runtime.settings.aggregates_table,
            projection,
            int(layout.read[1:]),
            int(layout.building[1:]),
        )
        return {"tombstones": copied, "present": present}

    def _gone(self, item_ids: list[str]) -> set[str]:
        """The ones of ``item_ids`` not in the source table (consistent reads)."""
        from projector.backfill.scanner import SourceTable
        from projector.verify.source import Source  # verify imports this module

        dynamodb = self.runtime.dynamodb
        source = Source(dynamodb, SourceTable.describe(dynamodb, self.runtime.settings.source_table), 1)
        found = source.get(item_ids)
        return {item_id for item_id in item_ids if item_id not in found}

    def finish(self, projection: Projection) -> str:
        """Swap reads to the rebuilt index or generation, atomically; what now serves reads."""
        self.carry_over(projection)
        if isinstance(projection, DocumentProjection):
            return indexes.finish_rebuild(self.runtime.opensearch, projection, self.prefix)
        assert isinstance(projection, AggregateProjection)
        table = self._table()
        before = table.meta(projection)
        generation = table.finish_rebuild(projection)
        self._record_history(projection, generation, before)
        return generation_sk(generation)

    def rollback(self, projection: Projection) -> str:
        """Abandon a rebuild in progress, or swap back to the previous build; what serves reads now."""
        if isinstance(projection, DocumentProjection):
            return indexes.rollback(self.runtime.opensearch, projection, self.prefix)
        assert isinstance(projection, AggregateProjection)
        table = self._table()
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
        if not write_meta(self._calls(), self.runtime.settings.aggregates_table, projection, meta, updated):
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

    def layout(self, projection: Projection) -> Layout:
        if isinstance(projection, DocumentProjection):
            found = indexes.describe(self.runtime.opensearch, projection, self.prefix)
            # A write target newer than the read index is a rebuild in progress; an older one is the
            # previous build, still written after a swap so that a rollback returns to an exact index.
            names = indexes.names(projection, self.prefix)
            current = names.generation_of(found.read_index or "") or 0
            newer = [name for name in found.write_indexes if (names.generation_of(name) or 0) > current]
            return Layout(
                projection.name,
                "search",
                found.read_index,
                found.write_indexes,
                max(newer, key=lambda name: names.generation_of(name) or 0) if newer else None,
                found.needs_rebuild,
                {
                    "read_alias": found.read_alias,
                    "stored_hash": found.stored_hash,
                    "code_hash": found.code_hash,
                },
            )
        assert isinstance(projection, AggregateProjection)
        described = self._table().describe(projection)
        return Layout(
            projection.name,
            "aggregate",
            generation_sk(described.read_generation),
            tuple(generation_sk(g) for g in described.write_generations),
            generation_sk(described.building_generation) if described.building_generation else None,
            described.needs_rebuild,
            {"stored_hash": described.stored_hash, "code_hash": described.code_hash},
        )

    # history of finished aggregate rebuilds -----------------------------------------------------------
    def _calls(self) -> Calls:
        return Calls(self.runtime.dynamodb, Deadline.never())

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
        self._calls()("put_item", TableName=self.runtime.settings.aggregates_table, Item=item)

    def _history(self, projection: AggregateProjection, generation: int) -> tuple[int, str | None] | None:
        found = self._calls()(
            "get_item",
            TableName=self.runtime.settings.aggregates_table,
            ConsistentRead=True,
            Key=self._history_key(projection, generation),
        ).get("Item")
        if not found:
            return None
        return int(found["previous_generation"]["N"]), found.get("previous_hash", {}).get("S")
