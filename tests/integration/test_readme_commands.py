"""Every command of README's examples runs as shown, in a shell, on demo-like data.

The commands are read from README.md (the block after "Examples on the demo data"), so an example
that changes is tested as changed. Each runs through `bash -c` exactly as printed (a shell would
treat an unquoted `>` as a redirection), with the `projector` of this checkout on PATH and this test's
isolated tables and index prefix. The data: `projector setup --with-source-table`, the demo's
deterministic order generator (seed 7, fewer orders and customers), and `projector backfill`.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def readme_examples() -> list[str]:
    text = (REPO / "README.md").read_text(encoding="utf-8")
    after = text.split("Examples on the demo data:", 1)[1]
    block = re.search(r"```\n(.*?)```", after, re.S)
    assert block, "no code block after 'Examples on the demo data:'"
    lines = [line for line in block.group(1).splitlines() if line.strip()]
    assert all(line.startswith("projector ") for line in lines), lines
    return lines


def run(command: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", "-c", command], capture_output=True, text=True, env=env, cwd=cwd, timeout=300, check=False
    )


@pytest.fixture
def demo_env(settings_env: Any, dynamodb: Any, tmp_path: Path) -> dict[str, str]:
    from devservers.workload import seed_orders

    env = {**os.environ, **settings_env.env, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
    setup = run("projector setup --with-source-table", env, tmp_path)
    assert setup.returncode == 0, setup.stderr
    seed_orders(dynamodb, settings_env.source_table, 40, seed=7, customers=8)
    backfill = run("projector backfill", env, tmp_path)
    assert backfill.returncode == 0, backfill.stderr
    return env


def test_every_readme_example_runs_as_shown(demo_env: dict[str, str], tmp_path: Path) -> None:
    work = tmp_path / "cwd"
    work.mkdir()
    examples = readme_examples()
    assert len(examples) >= 5
    for line in examples:
        result = run(line, demo_env, work)
        assert result.returncode == 0, (line, result.stderr[-2000:])
        assert result.stdout.strip(), line  # printed its result (not redirected away by the shell)
        command, _, comment = line.partition("#")
        if "--json" not in command:
            continue
        answer = json.loads(result.stdout)
        if comment.strip().startswith("{"):
            shown = comment.strip()
            keys = set(re.findall(r'"([a-z_]+)":', shown))
            assert keys <= set(answer), (line, sorted(answer))
            if "..." not in shown:
                assert keys == set(answer), (line, sorted(answer))
        if command.startswith("projector aggregate customer_totals"):
            assert answer["name"] == "customer_totals" and answer["key"] == "C0007"
            assert re.fullmatch(r"-?\d+\.\d\d", answer["revenue"]) and Decimal(answer["revenue"]) > 0
            assert answer["order_count"] > 0  # C0007 holds orders in this data
        if command.startswith("projector aggregate product_sales"):
            assert answer["name"] == "product_sales" and answer["key"] == "SKU-7468"
            assert re.fullmatch(r"\d+\.\d\d", answer["revenue"]) and Decimal(answer["revenue"]) > 0
            assert type(answer["units"]) is int and answer["units"] > 0  # a line of the first (shipped) order
        if command.startswith("projector verify"):
            assert answer["drift"] == 0 and answer["checked"] > 0
    assert list(work.iterdir()) == [], "a command wrote a file (an unquoted > in the README?)"
