"""The before/after table of docs/benchmarks.md: two results files joined case by case."""

from __future__ import annotations

from typing import Any

import pytest

from bench.table import compare

pytestmark = pytest.mark.unit


def entry(ratio: float, met: bool) -> dict[str, Any]:
    side = {"median": 1.0, "unit": "records/s", "spread_pct": 0.0}
    return {
        "status": "measured",
        "subject": side,
        "baseline": side,
        "ratio": ratio,
        "goal": "ratio >= 0.8",
        "goal_met": met,
    }


def test_each_case_shows_its_ratio_before_and_after_and_the_goal_of_the_later_run() -> None:
    before = {"handler_vs_same_writes": entry(0.5, False)}
    after = {"handler_vs_same_writes": entry(0.9, True), "handler_vs_bulk": entry(0.2, False)}
    lines = compare(before, after, markdown=True).splitlines()
    assert lines[2] == "| handler_vs_bulk | - | 0.2 | >= 0.8 | NO |"
    assert lines[3] == "| handler_vs_same_writes | 0.5 | 0.9 | >= 0.8 | yes |"
