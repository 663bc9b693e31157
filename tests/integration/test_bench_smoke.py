"""scripts/bench --quick runs to the end and writes a well-formed results file. No speed is asserted."""

from __future__ import annotations

import json
import subprocess
import sys
from numbers import Real
from pathlib import Path
from typing import Any

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
CASES = (
    "handler_vs_bulk",
    "handler_vs_same_writes",
    "handler_vs_per_record",
    "known_states_gain",
    "cpu_vs_deserializer",
    "import_vs_boto3",
    "aggregate_writes",
    "backfill_vs_scan",
)
DERIVED = ("cost_per_million", "freshness")  # figures without paired runs

pytestmark = pytest.mark.integration


def _numeric(value: Any) -> bool:
    return isinstance(value, Real) and not isinstance(value, bool)


def _check_figures(entry: dict[str, Any], where: str) -> None:
    assert entry["status"] == "measured", f"{where}: {entry.get('reason')}"
    assert _numeric(entry["ratio"]), where
    assert isinstance(entry["goal_met"], bool), where
    for side in ("subject", "baseline"):
        figure = entry[side]
        assert figure["unit"] and _numeric(figure["median"]) and figure["median"] > 0, (where, side)
        assert _numeric(figure["spread_pct"]) and figure["runs"] == len(figure["samples"]) >= 1, (where, side)


def _check_derived(results: dict[str, Any]) -> None:
    same = results["handler_vs_same_writes"]
    assert same["checks"]["handler_mismatches"] == 0 and same["checks"]["same_writes_mismatches"] == 0
    assert _numeric(same["handler_seconds_per_batch"]) and same["document_writes"] >= 1

    cost = results["cost_per_million"]
    assert cost["status"] == "measured", cost.get("reason")
    assert cost["memory_mb"] >= 128 and _numeric(cost["ratio"])
    for side in ("handler", "per_record_handler"):
        assert sorted(cost[side], key=int) == ["100", "1000", "10000"], side
        for size, figures in cost[side].items():
            assert figures["requests"] == 1_000_000 // int(size), (side, size)
            assert _numeric(figures["gb_seconds"]) and figures["gb_seconds"] > 0, (side, size)

    fresh = results["freshness"]
    assert fresh["status"] == "measured", fresh.get("reason")
    assert fresh["all_visible"] is True
    assert 0 < fresh["p50_s"] <= fresh["p99_s"] and fresh["subject"]["runs"] == fresh["writes"]
    assert isinstance(fresh["goal_met"], bool)
    parts = fresh["breakdown"]  # where the time goes: stream and poll, handler, refresh
    assert parts["writes"] == fresh["writes"] and parts["handler"]["p50_s"] > 0, parts


@pytest.mark.timeout(180)
def test_quick_bench_writes_every_case(local_servers: dict[str, str], tmp_path: Path) -> None:
    out = tmp_path / "results.json"
    completed = subprocess.run(
        [sys.executable, str(REPO_ROOT / "scripts" / "bench"), "--quick", "--out", str(out)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=170,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    assert "handler_vs_bulk" in completed.stdout  # the table
    results = json.loads(out.read_text())

    assert results["quick"] is True
    assert results["machine"]["cpu_count"] >= 1 and results["machine"]["cpu_model"]
    assert results["date"] and "commit" in results["git"]
    for name in CASES + DERIVED:
        assert name in results, name
    for name in CASES[:-1]:
        _check_figures(results[name], name)
    _check_derived(results)

    aggregates = results["aggregate_writes"]
    assert _numeric(aggregates["sink"]["writes_per_touched_group_per_batch"])
    assert _numeric(aggregates["naive"]["writes_per_change"])
    assert _numeric(results["import_vs_boto3"]["batch_memory"]["tracemalloc_peak_mib"])

    backfill = results["backfill_vs_scan"]
    if backfill["status"] == "pending":  # projector.backfill not importable: the reason is recorded
        assert backfill["reason"]
        return
    assert _numeric(backfill["ratio"])
    assert sorted(backfill["by_segments"], key=int) == ["1", "2", "4"]
    for segments, entry in backfill["by_segments"].items():
        _check_figures(entry, f"backfill_vs_scan @{segments}")
