"""scripts/* run under the project's .venv whatever python3 starts them (a system python with another
moto, or none). The bare interpreter here is a fresh venv without a single package."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def bare_python(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A python3 that is not the project's venv and has no third-party package at all."""
    folder = tmp_path_factory.mktemp("bare") / "venv"
    base = getattr(sys, "_base_executable", None) or sys.executable
    subprocess.run([base, "-m", "venv", "--without-pip", str(folder)], check=True, timeout=120)
    python = folder / "bin" / "python"
    probe = subprocess.run([str(python), "-c", "import pydantic"], capture_output=True, check=False)
    assert probe.returncode != 0  # really bare: the project's dependencies are not importable there
    return python


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PROJECTOR_NO_REEXEC", "VIRTUAL_ENV")}
    env["PATH"] = os.pathsep.join(p for p in env.get("PATH", "").split(os.pathsep) if ".venv" not in p)
    return env


def test_a_script_started_by_another_python_reruns_under_the_venv(bare_python: Path) -> None:
    result = subprocess.run(
        [str(bare_python), str(REPO / "scripts" / "_venv.py")],
        capture_output=True,
        text=True,
        check=False,
        env=_env(),
        cwd=REPO,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert Path(result.stdout.strip()) == REPO / ".venv" / "bin" / "python"


def test_services_start_and_status_work_from_another_python(bare_python: Path) -> None:
    """`start` is idempotent (the shared servers answer already and are left alone); `status` reports."""
    for command in (["start", "--only", "opensearch,moto"], ["status", "--json"]):
        result = subprocess.run(
            [str(bare_python), str(REPO / "scripts" / "services"), *command],
            capture_output=True,
            text=True,
            check=False,
            env=_env(),
            cwd=REPO,
            timeout=300,
        )
        assert result.returncode == 0, (command, result.stderr[-2000:])
    report = {entry["name"]: entry for entry in json.loads(result.stdout)}
    assert report["opensearch"]["up"] and report["moto"]["up"], report
