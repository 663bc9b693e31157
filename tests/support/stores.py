"""An in-memory ``ProjectionStore`` for unit tests: the same version rules as the real stores, no servers.

It keeps one state and value per item and build (the value is the item's image), folds changes with
``projector.versioning.fold`` exactly as the real stores do, and follows the same rebuild phases, so the
contract tests in tests/unit/test_store_contract.py hold for it as for the real ones. Tests can make it
refuse items (``poison``), fail them (``fail``) or raise (``error``), and see every call (``calls``).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

from projector.changes.batch import ItemChanges, SinkResult
from projector.changes.types import Change
from projector.projection.base import Projection
from projector.retry.deadline import Deadline
from projector.stores.base import Connections, Layout, ProjectionStore, WouldWrite
from projector.versioning import ItemState, fold, scheme_for


@dataclass(slots=True)
class _Builds:
    """One projection's builds: ``read`` serves reads, ``writes`` are written by every apply."""

    read: str = "b1"
    writes: list[str] = field(default_factory=lambda: ["b1"])
    last: int = 1
    items: dict[str, dict[str, tuple[ItemState, Any]]] = field(default_factory=lambda: {"b1": {}})

    @property
    def building(self) -> str | None:
        newer = [name for name in self.writes if int(name[1:]) > int(self.read[1:])]
        return max(newer, key=lambda name: int(name[1:])) if newer else None

    @property
    def previous(self) -> str | None:
        older = [name for name in self.writes if int(name[1:]) < int(self.read[1:])]
        return max(older, key=lambda name: int(name[1:])) if older else None


class InMemoryStore(ProjectionStore[Projection]):
    """Every projection's builds in dicts; thread-safe like the real stores."""

    kind: ClassVar[str] = "memory"
    would_write_fields: ClassVar[tuple[str, ...]] = ("items",)

    def __init__(self) -> None:
        self.poison: dict[str, str] = {}  # item id -> reason: every change of it is refused
        self.fail: dict[str, str] = {}  # item id -> error: reported failed, nothing written
        self.error: BaseException | None = None  # raised by the next apply (once)
        self.calls: list[tuple[str, list[str]]] = []  # (projection, item ids) per apply
        self._builds: dict[str, _Builds] = {}
        self.started: dict[tuple[str, str], float] = {}
        self._lock = threading.Lock()

    @classmethod
    def open(cls, connections: Connections) -> InMemoryStore:
        return cls()

    @classmethod
    def preview(cls, projection: Projection, items: Sequence[ItemChanges], tally: WouldWrite) -> SinkResult:
        result = SinkResult()
        for item in items:
            folded = fold(scheme_for(projection.version), None, item.changes, _value, projection.keep_expired)
            result.applied += len(folded.applied)
            result.stale += len(folded.stale)
            if folded.state is not None and not folded.state.deleted:
                tally.counts["items"] += 1
        return result

    def _of(self, projection: Projection) -> _Builds:
        return self._builds.setdefault(projection.name, _Builds())

    # apply ----------------------------------------------------------------------------------------------
    def apply(self, projection: Projection, items: Sequence[ItemChanges], deadline: Deadline) -> SinkResult:
        with self._lock:
            self.calls.append((projection.name, [item.item_id for item in items]))
            if self.error is not None:
                error, self.error = self.error, None
                raise error
            result = SinkResult(requests=1 if items else 0)
            builds = self._of(projection)
            for item in items:
                if item.item_id in self.fail:
                    result.failed[item.item_id] = self.fail[item.item_id]
                    continue
                if item.item_id in self.poison:
                    result.poison.extend((change, self.poison[item.item_id]) for change in item.changes)
                    continue
                self._apply_item(projection, builds, item, result)
            return result

    def _apply_item(
        self, projection: Projection, builds: _Builds, item: ItemChanges, result: SinkResult
    ) -> None:
        scheme = scheme_for(projection.version)
        counted = False
        for name in builds.writes:
            stored = builds.items[name].get(item.item_id)
            folded = fold(
                scheme,
                stored[0] if stored else None,
                item.changes,
                _value,
                projection.keep_expired,
            )
            if folded.state is not None:
                builds.items[name][item.item_id] = (
                    folded.state,
                    None if folded.state.deleted else folded.output,
                )
            if not counted:  # counted once, as the real stores count what the first build took
                counted = True
                result.applied += len(folded.applied)
                result.stale += len(folded.stale)
                result.poison.extend(folded.poison)

    # reads ----------------------------------------------------------------------------------------------
    def read_states(
        self, projection: Projection, item_ids: Sequence[str], build: str | None = None
    ) -> dict[str, ItemState]:
        with self._lock:
            builds = self._of(projection)
            stored = builds.items.get(build or builds.read, {})
            return {item_id: stored[item_id][0] for item_id in item_ids if item_id in stored}

    def values(self, projection: Projection, build: str | None = None) -> dict[str, Any]:
        """What a reader sees: the value of every live item of the read build (or ``build``)."""
        with self._lock:
            builds = self._of(projection)
            stored = builds.items.get(build or builds.read, {})
            return {item_id: value for item_id, (state, value) in stored.items() if not state.deleted}

    def describe(self, projection: Projection) -> Layout:
        with self._lock:
            builds = self._of(projection)
            return Layout(
                projection.name, self.kind, builds.read, tuple(builds.writes), builds.building, False, {}
            )

    # rebuilds -------------------------------------------------------------------------------------------
    def begin_rebuild(self, projection: Projection) -> str:
        with self._lock:
            builds = self._of(projection)
            target = builds.building
            if target is None:
                builds.last += 1
                target = f"b{builds.last}"
                builds.items[target] = {}
                self.started[(projection.name, target)] = time.time()
                builds.writes = [builds.read, target]  # the build before the read one is no longer written
        self.carry_over(projection)
        return target

    def carry_over(self, projection: Projection) -> dict[str, Any]:
        with self._lock:
            builds = self._of(projection)
            target = builds.building
            if target is None:
                return {}
            source, into = builds.items[builds.read], builds.items[target]
            copied = 0
            for item_id, (state, value) in source.items():
                if state.deleted and item_id not in into:
                    into[item_id] = (state, value)
                    copied += 1
            return {"tombstones": copied}

    def finish_rebuild(self, projection: Projection) -> str:
        self.carry_over(projection)
        with self._lock:
            builds = self._of(projection)
            target = builds.building
            if target is None:
                raise RuntimeError(f"{projection.name}: no rebuild in progress")
            builds.read = target  # the replaced build stays written, so a rollback is exact
            return target

    def build_started_at(self, projection: Projection, build: str) -> float | None:
        return self.started.get((projection.name, build))

    def rollback(self, projection: Projection) -> str:
        with self._lock:
            builds = self._of(projection)
            if builds.building is not None:
                builds.writes = [builds.read]
                return builds.read
            previous = builds.previous
            if previous is None:
                raise RuntimeError(f"{projection.name}: nothing to roll back to")
            builds.read, builds.writes = previous, [previous]
            return previous


def _value(change: Change) -> dict[str, Any]:
    """What the fake stores for a live item: its image."""
    return dict(change.image or {})
