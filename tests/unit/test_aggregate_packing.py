"""Transaction packing: every unit once, at most ``limit`` actions, groups written as rarely as possible."""

from __future__ import annotations

import math
from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from projector.sinks.aggregates.packing import Unit, components, cost, pack, split

pytestmark = pytest.mark.unit


def unit(name: str, *groups: str, records: int = 1) -> Unit[str]:
    return Unit(name, records, frozenset(groups))


def group_writes(transactions: list[list[Unit[str]]]) -> Counter[str]:
    """How many transactions write each group row (one ADD per transaction that holds it)."""
    counts: Counter[str] = Counter()
    for transaction in transactions:
        counts.update(set().union(*(u.groups for u in transaction)))
    return counts


def test_cost_counts_each_group_row_once() -> None:
    assert cost([unit("a", "g1"), unit("b", "g1"), unit("c", "g1", "g2", records=2)]) == 4 + 2


def test_moves_link_groups_into_one_component() -> None:
    units = [unit("a", "A"), unit("b", "B"), unit("move", "A", "B"), unit("c", "C"), unit("none")]
    found = [{u.payload for u in component} for component in components(units)]
    assert found == [{"a", "b", "move"}, {"c"}, {"none"}]


def test_small_components_share_transactions() -> None:
    units = [unit(f"{g}{i}", g) for g in "ABCDEFGH" for i in range(10)]  # 8 components of 11 actions
    transactions = pack(units, 100)
    assert len(transactions) == 1
    assert max(group_writes(transactions).values()) == 1


def test_components_are_packed_whole_first_fit_decreasing() -> None:
    # components of 60, 50, 40, 30, 20 actions: 60+40 | 50+30+20
    units = [unit(f"{g}{i}", g) for g, n in zip("ABCDE", (59, 49, 39, 29, 19), strict=True) for i in range(n)]
    transactions = pack(units, 100)
    assert sorted(cost(t) for t in transactions) == [100, 100]
    assert all(count == 1 for count in group_writes(transactions).values())


def test_hot_group_is_split_into_chunks_of_limit_minus_one() -> None:
    units = [unit(f"o{i}", "hot") for i in range(500)]
    transactions = pack(units, 100)
    assert all(cost(t) <= 100 for t in transactions)
    assert group_writes(transactions)["hot"] == math.ceil(500 / 99)
    assert sorted(u.payload for t in transactions for u in t) == sorted(u.payload for u in units)


def test_exactly_limit_actions_is_not_split() -> None:
    units = [unit(f"o{i}", "g") for i in range(99)]
    assert len(pack(units, 100)) == 1


def test_split_keeps_a_groups_units_together() -> None:
    # one component (linked by movers) of 3 groups x 60 items: cut by group order, never interleaved
    units = [unit(f"{g}{i}", g) for g in "ABC" for i in range(60)]
    units += [unit("ab", "A", "B"), unit("bc", "B", "C")]
    chunks = split(units, 100)
    assert all(cost(c) <= 100 for c in chunks)
    writes = group_writes(chunks)
    assert writes["A"] <= 2 and writes["B"] <= 2 and writes["C"] <= 2


def test_oversized_unit_gets_its_own_transaction() -> None:
    big = unit("big", *[f"g{i}" for i in range(150)])
    transactions = pack([big, unit("a", "g1"), unit("b", "x")], 100)
    assert [big] in transactions
    assert sum(len(t) for t in transactions) == 3


def test_units_without_groups_fill_up() -> None:
    transactions = pack([unit(f"r{i}") for i in range(250)], 100)
    assert [len(t) for t in transactions] == [100, 100, 50]


def test_records_per_unit_count_during_a_rebuild() -> None:
    # two generations: each item writes two records and two group rows (one per generation)
    units = [unit(f"o{i}", "g1:A", "g2:A", records=2) for i in range(49)]
    assert cost(units) == 100
    assert len(pack(units, 100)) == 1


units_strategy = st.lists(
    st.tuples(st.integers(1, 2), st.sets(st.sampled_from([f"g{i}" for i in range(12)]), max_size=3)),
    max_size=120,
)


@settings(max_examples=300, deadline=None)
@given(units_strategy, st.integers(4, 40))
def test_pack_properties(raw: list[tuple[int, set[str]]], limit: int) -> None:
    units = [Unit(i, records, frozenset(groups)) for i, (records, groups) in enumerate(raw)]
    transactions = pack(units, limit)
    # every unit exactly once
    assert sorted(u.payload for t in transactions for u in t) == list(range(len(units)))
    # within the limit, but for a unit that alone exceeds it (alone in its transaction)
    for transaction in transactions:
        assert cost(transaction) <= limit or (len(transaction) == 1 and transaction[0].cost > limit)
    # a component that fits is never split: all its groups are written exactly once
    where = {u.payload: index for index, t in enumerate(transactions) for u in t}
    for component in components(units):
        if cost(component) <= limit:
            assert len({where[u.payload] for u in component}) == 1
    # everything that fits one transaction goes in one
    if units and cost(units) <= limit:
        assert len(transactions) == 1
