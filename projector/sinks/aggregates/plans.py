"""The aggregate writer's working shapes: an item's folded plan, its writes per generation, the result."""

from __future__ import annotations

import uuid
from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from projector.changes.batch import ItemChanges, SinkResult
from projector.sinks.aggregates.contributions import Contributions
from projector.sinks.aggregates.packing import Unit
from projector.versioning.state import ItemState

if TYPE_CHECKING:
    from projector.changes.types import Change


@dataclass(slots=True)
class GenerationWrite:
    """One contribution record to put and the group deltas that go with it."""

    generation: int
    read_token: str | None
    state: ItemState
    contributions: Contributions
    deltas: Contributions
    token: str = field(default_factory=lambda: uuid.uuid4().hex)


@dataclass(slots=True)
class ItemPlan:
    """An item's folded changes: the writes per generation, and how its changes were judged."""

    item: ItemChanges
    writes: list[GenerationWrite] = field(default_factory=list)
    applied: int = 0
    stale: int = 0
    poison: list[tuple[Change, str]] = field(default_factory=list)
    last: Change | None = None
    committed: int = 0  # generations already written one by one (``AggregateSink._send``)
    partial: bool = False  # a step of emptying a record stored past the group limit (not the change yet)

    @property
    def unit(self) -> Unit[ItemPlan]:
        groups = frozenset(f"g{w.generation}:{group}" for w in self.writes for group in w.deltas)
        return Unit(self, len(self.writes), groups)


@dataclass(slots=True)
class AggregateResult(SinkResult):
    """A SinkResult plus what the batch cost in writes, so tests and benchmarks can check the coalescing.

    ``group_writes`` counts group-row ``ADD`` updates sent per ``g{generation}:{group}`` (attempts that
    were cancelled included): one per touched group per batch whenever the group's items fit one transaction.
    """

    transactions: int = 0
    record_writes: int = 0
    group_writes: Counter[str] = field(default_factory=Counter)

    @property
    def max_group_writes(self) -> int:
        return max(self.group_writes.values(), default=0)
