"""The one interface between the engine and where a projection's results are kept.

A store holds every projection of one kind (search documents, aggregates, event-stream documents). The
pipeline applies changes through it; backfill, rebuild, status, rollback and verify ask it about its
layout and its builds. Nothing outside a store's own module needs to know which kind a projection is.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Generic, TypeVar

from projector.changes.batch import ItemChanges, SinkResult

if TYPE_CHECKING:
    from collections.abc import Callable

    from projector.config.settings import Settings
    from projector.projection.base import Projection
    from projector.retry.deadline import Deadline
    from projector.sinks.opensearch.carryover import Gone
    from projector.versioning.state import ItemState

P = TypeVar("P", bound="Projection")


@dataclass(frozen=True, slots=True)
class Connections:
    """What a store may use: the settings and the clients, created on first use by whoever owns them."""

    settings: Settings
    opensearch: Callable[[], Any]
    dynamodb: Callable[[], Any]
    missing_from_source: Gone | None = None  # the ids gone from the source table (consistent reads)


@dataclass(frozen=True, slots=True)
class Layout:
    """Where a projection's reads and writes go now (an index name, or a generation ``g{N}``)."""

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


@dataclass(slots=True)
class WouldWrite:
    """What a dry run would write for one projection: counts, and distinct keys counted once."""

    counts: Counter[str] = field(default_factory=Counter)
    distinct: dict[str, set[str]] = field(default_factory=dict)

    def add(self, other: WouldWrite) -> None:
        self.counts.update(other.counts)
        for name, keys in other.distinct.items():
            self.distinct.setdefault(name, set()).update(keys)

    def counted(self, fields: Sequence[str]) -> dict[str, int]:
        return {
            name: len(self.distinct[name]) if name in self.distinct else self.counts[name] for name in fields
        }


class ProjectionStore(ABC, Generic[P]):
    """Keeps the results of every projection of one kind, exactly once in effect.

    Rebuilds: ``begin_rebuild`` adds a new build (index or generation) that every later ``apply`` also
    writes, ``finish_rebuild`` swaps reads to it atomically, ``rollback`` abandons it or swaps back to
    the build it replaced (still written, so exact). Reads stay on one exact build throughout.
    """

    kind: ClassVar[str]  # what ``describe`` and reports call it: "search", "aggregate"
    would_write_fields: ClassVar[tuple[str, ...]]  # what ``preview`` counts, in report order

    @classmethod
    @abstractmethod
    def open(cls, connections: Connections) -> ProjectionStore[Any]:
        """The store over the clients and settings of ``connections`` (the runtime calls it once)."""

    @classmethod
    @abstractmethod
    def preview(cls, projection: P, items: Sequence[ItemChanges], tally: WouldWrite) -> SinkResult:
        """A dry run of ``apply`` from an empty store: fold and render as ``apply`` would (so poison is
        found as in a real run), add what would be written to ``tally``, write nothing."""

    @abstractmethod
    def apply(self, projection: P, items: Sequence[ItemChanges], deadline: Deadline) -> SinkResult:
        """Read the stored state of ``items``, fold their changes, write what is newer, report the rest."""

    @abstractmethod
    def read_states(
        self, projection: P, item_ids: Sequence[str], build: str | None = None
    ) -> dict[str, ItemState]:
        """The stored version state of each of ``item_ids`` that has one (tombstones too), from the
        build serving reads or from ``build`` (a name ``describe`` gave)."""

    @abstractmethod
    def describe(self, projection: P) -> Layout:
        """Which build serves reads, which are written, whether a rebuild is running or needed."""

    @abstractmethod
    def begin_rebuild(self, projection: P) -> str:
        """Start (or rejoin, same definition) a rebuild; the new build's name. Carries over at once."""

    @abstractmethod
    def carry_over(self, projection: P) -> dict[str, Any]:
        """Copy what a scan cannot see (tombstones, kept expired items) from the read build into the
        one being built; only what the new build lacks, so a newer write there wins. Idempotent."""

    @abstractmethod
    def finish_rebuild(self, projection: P) -> str:
        """Carry over once more, then swap reads to the new build atomically; what now serves reads."""

    @abstractmethod
    def rollback(self, projection: P) -> str:
        """Abandon a rebuild in progress, or swap back to the previous build; what serves reads now."""

    @abstractmethod
    def build_started_at(self, projection: P, build: str) -> float | None:
        """When ``build`` was created (epoch seconds), or None when the store keeps no such date."""
