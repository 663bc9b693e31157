"""Bulk bodies cut by size: order kept, every run within the limit, an oversized entry alone."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from projector.sinks.opensearch.chunks import by_size

pytestmark = pytest.mark.unit


@given(st.lists(st.integers(min_value=0, max_value=50)), st.integers(min_value=1, max_value=60))
def test_runs_keep_order_and_fit_the_limit(sizes: list[int], limit: int) -> None:
    entries = list(enumerate(sizes))
    chunks = by_size(entries, lambda entry: entry[1], limit)
    assert [entry for chunk in chunks for entry in chunk] == entries
    assert all(chunk for chunk in chunks)
    for chunk in chunks:
        assert len(chunk) == 1 or sum(size for _, size in chunk) <= limit


def test_an_entry_over_the_limit_is_a_run_of_its_own() -> None:
    assert by_size([3, 10, 2, 2], lambda size: size, 5) == [[3], [10], [2, 2]]
