"""Pack item writes into transactions so that each group row is written as few times as possible.

A unit (one item's writes) costs its own actions (its contribution-record Puts) plus one shared action
per group row it changes; units in one transaction that change the same group share that row's single
``ADD``. The rule, exactly:

1. Units that change a common group row are linked (an item moving from A to B links A and B); the
   connected components are the pieces that must stay together for every group to be written once.
2. A component whose cost (its units' records plus its distinct group rows) is at most ``limit`` stays
   whole. A larger one is cut: its units are ordered by their sorted group rows and filled greedily
   into chunks of at most ``limit`` actions. A group is then written once per chunk holding one of its
   units: a hot group alone with n single-record items gets ``ceil(n / (limit - 1))`` writes.
3. Pieces go into transactions first-fit decreasing by cost, counting a group row already in the
   transaction only once. A unit that alone costs more than ``limit`` gets a transaction of its own
   (the writer refuses it: DynamoDB cannot write it atomically).

Packing never affects correctness (each unit's record and its deltas always travel together); it only
decides how many writes a hot group costs.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

logger = logging.getLogger(__name__)

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Unit(Generic[T]):
    """What must commit together: ``records`` own actions plus one action per row in ``groups``."""

    payload: T
    records: int
    groups: frozenset[str]

    @property
    def cost(self) -> int:
        return self.records + len(self.groups)


def cost(units: Sequence[Unit[T]]) -> int:
    """Actions a transaction holding ``units`` sends: every record, and each group row once."""
    groups: set[str] = set()
    for unit in units:
        groups |= unit.groups
    return sum(unit.records for unit in units) + len(groups)


def components(units: Sequence[Unit[T]]) -> list[list[Unit[T]]]:
    """Units linked through shared group rows, in order of first appearance."""
    parent = list(range(len(units)))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    owner: dict[str, int] = {}
    for index, unit in enumerate(units):
        for group in unit.groups:
            if group in owner:
                a, b = find(owner[group]), find(index)
                if a != b:
                    parent[max(a, b)] = min(a, b)
            else:
                owner[group] = index
    grouped: dict[int, list[Unit[T]]] = {}
    for index, unit in enumerate(units):
        grouped.setdefault(find(index), []).append(unit)
    return list(grouped.values())


def split(component: Sequence[Unit[T]], limit: int) -> list[list[Unit[T]]]:
    """Cut a component that is too big: units ordered by their group rows, chunks filled greedily."""
    ordered = sorted(component, key=lambda unit: sorted(unit.groups))
    chunks: list[list[Unit[T]]] = []
    current: list[Unit[T]] = []
    records = 0
    groups: set[str] = set()
    for unit in ordered:
        if current and records + unit.records + len(groups | unit.groups) > limit:
            chunks.append(current)
            current, records, groups = [], 0, set()
        current.append(unit)
        records += unit.records
        groups |= unit.groups
    if current:
        chunks.append(current)
    return chunks


def pack(units: Sequence[Unit[T]], limit: int) -> list[list[Unit[T]]]:
    """Transactions of at most ``limit`` actions (but for an oversized single unit), per the module rule."""
    pieces: list[list[Unit[T]]] = []
    for component in components(units):
        if cost(component) <= limit:
            pieces.append(component)
        else:
            logger.debug("splitting a component of %d units (%d actions)", len(component), cost(component))
            pieces.extend(split(component, limit))
    pieces.sort(key=cost, reverse=True)  # stable: equal costs keep their order
    bins: list[tuple[list[Unit[T]], set[str], list[int]]] = []  # units, group rows, [records]
    for piece in pieces:
        piece_groups = set().union(*(unit.groups for unit in piece))
        piece_records = sum(unit.records for unit in piece)
        for units_in, groups_in, records_in in bins:
            if records_in[0] + piece_records + len(groups_in | piece_groups) <= limit:
                units_in.extend(piece)
                groups_in |= piece_groups
                records_in[0] += piece_records
                break
        else:
            bins.append((list(piece), piece_groups, [piece_records]))
    return [units_in for units_in, _, _ in bins]
