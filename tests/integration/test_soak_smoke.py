"""The chaos soak, short: `scripts/soak --quick` must end by itself with zero drift in every projection,
having injected every enabled fault kind, killed and restarted the runner, replayed batches, run a
backfill and produced dead letters (see docs/soak.md)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
HARD_TIMEOUT_S = 480

#: Fault kinds left out because they hit an engine bug that has its own strict-xfail regression test;
#: drop an entry when that test starts passing (it then fails as XPASS, which is the reminder).
#: (dynamodb:limit_data was left out here until 2be0357 fixed truncated answers.)
KNOWN_ENGINE_BUGS: set[str] = set()


def test_quick_soak_ends_by_itself_with_zero_drift(tmp_path: Path) -> None:
    report_path = tmp_path / "soak.json"
    command = [
        sys.executable,
        str(ROOT / "scripts" / "soak"),
        "--quick",
        "--seed",
        "11",
        "--report",
        str(report_path),
    ]
    for kind in sorted(KNOWN_ENGINE_BUGS):
        command += ["--without", kind]
    done = subprocess.run(
        command, cwd=ROOT, capture_output=True, text=True, timeout=HARD_TIMEOUT_S, check=False
    )
    detail = f"exit {done.returncode}\nstdout: {done.stdout[-3000:]}\nstderr: {done.stderr[-3000:]}"
    assert report_path.is_file(), detail
    report = json.loads(report_path.read_text(encoding="utf-8"))
    figures = report["figures"]
    assert report["error"] is None, detail
    assert figures["drift"] == 0, json.dumps(report["verify"], indent=1)[:4000]
    assert done.returncode == 0, detail
    assert done.stdout.strip().splitlines()[-1] == report["line"]

    missing = [kind for kind in report["expected_faults"] if report["faults"].get(kind, 0) < 1]
    assert not missing, f"fault kinds never injected: {missing}"
    assert sorted(KNOWN_ENGINE_BUGS) == report["disabled_faults"]
    assert figures["changes"] > 100 and figures["batches"] > 0
    assert figures["runner_kills"] >= 1 and figures["runner_restarts"] >= figures["runner_kills"]
    assert figures["replayed_batches"] + figures["shadow_batches"] >= 1
    assert figures["backfills"] >= 1
    assert figures["poison_versions"] >= 1 and figures["dead_letters"] >= 1
    restart = report["opensearch_restarts"]
    assert restart and (
        restart[0].get("restarted") or "not started by scripts/services" in restart[0]["note"]
    )
