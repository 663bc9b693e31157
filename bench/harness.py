"""Measurement primitives: repeated samples, paired ratios against a baseline, goals, machine facts.

Every case measures its subject and its baseline alternately in the same process, on the same servers,
so a noisy neighbour slows both alike; the ratio's spread comes from the paired runs.
"""

from __future__ import annotations

import gc
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent


def log(message: str) -> None:
    """Progress on stderr (stdout carries the table)."""
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


@dataclass(frozen=True, slots=True)
class Goal:
    """``ratio op value``, e.g. ``>= 0.8``."""

    op: str
    value: float

    def met(self, ratio: float | None) -> bool | None:
        if ratio is None:
            return None
        return ratio >= self.value if self.op == ">=" else ratio <= self.value

    def __str__(self) -> str:
        return f"{self.op} {self.value:g}"


@dataclass(slots=True)
class Samples:
    """Repeated measurements of one figure (a rate or a cost) with its unit."""

    label: str
    unit: str
    values: list[float] = field(default_factory=list)

    def add(self, value: float) -> None:
        self.values.append(value)

    @property
    def median(self) -> float:
        return statistics.median(self.values)

    def to_json(self) -> dict[str, Any]:
        values = self.values
        median = self.median
        return {
            "label": self.label,
            "unit": self.unit,
            "median": _round(median),
            "runs": len(values),
            "min": _round(min(values)),
            "max": _round(max(values)),
            "stdev": _round(statistics.stdev(values)) if len(values) > 1 else 0.0,
            "spread_pct": _round(100 * (max(values) - min(values)) / median) if median else 0.0,
            "samples": [_round(v) for v in values],
        }


def compare(subject: Samples, baseline: Samples, goal: Goal, **extra: Any) -> dict[str, Any]:
    """One case entry: both figures, ``ratio`` = subject / baseline (medians), paired-ratio spread, goal."""
    ratio = subject.median / baseline.median if baseline.median else None
    paired = [s / b for s, b in zip(subject.values, baseline.values, strict=False) if b]
    return {
        "status": "measured",
        "subject": subject.to_json(),
        "baseline": baseline.to_json(),
        "ratio": _round(ratio) if ratio is not None else None,
        "ratio_spread": {"min": _round(min(paired)), "max": _round(max(paired))} if paired else None,
        "goal": f"ratio {goal}",
        "goal_met": goal.met(ratio),
        **extra,
    }


def pending(reason: str, goal: Goal) -> dict[str, Any]:
    return {"status": "pending", "reason": reason, "ratio": None, "goal": f"ratio {goal}", "goal_met": None}


def failed(error: BaseException, goal: Goal) -> dict[str, Any]:
    return {
        "status": "failed",
        "reason": f"{type(error).__name__}: {error}",
        "ratio": None,
        "goal": f"ratio {goal}",
        "goal_met": None,
    }


def timed(run: Callable[[], Any]) -> tuple[float, Any]:
    """Wall seconds of ``run()`` (garbage collected before, as every contender gets)."""
    gc.collect()
    start = time.perf_counter()
    value = run()
    return time.perf_counter() - start, value


def timed_cpu(run: Callable[[], Any]) -> tuple[float, Any]:
    """CPU seconds of this process during ``run()``: for no-I/O cases, robust to a busy machine."""
    gc.collect()
    start = time.process_time()
    value = run()
    return time.process_time() - start, value


def alternate(rounds: int, contenders: dict[str, Callable[[int], None]]) -> None:
    """Run every contender once per round, swapping the order each round (neither always goes first)."""
    names = list(contenders)
    for round_index in range(rounds):
        for name in names if round_index % 2 == 0 else reversed(names):
            contenders[name](round_index)


STDOUT_LOG = Path(os.environ.get("TMPDIR", "/tmp")) / "projector-bench-stdout.log"


@contextmanager
def quiet_stdout(target: Path | None = None) -> Iterator[None]:
    """Send fd 1 to ``target`` (default STDOUT_LOG), where Powertools' logs and metrics go meanwhile.

    The engine still formats and writes every line, as in Lambda; only the table owns the terminal.
    """
    sys.stdout.flush()
    saved = os.dup(1)
    sink = os.open(target or STDOUT_LOG, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        os.dup2(sink, 1)
        yield
    finally:
        sys.stdout.flush()
        os.dup2(saved, 1)
        os.close(saved)
        os.close(sink)


def machine() -> dict[str, Any]:
    model = platform.processor() or "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    load = os.getloadavg() if hasattr(os, "getloadavg") else (0.0, 0.0, 0.0)
    return {
        "cpu_count": os.cpu_count(),
        "cpu_model": model,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "load_average_at_start": [round(x, 2) for x in load],
    }


def git_commit() -> dict[str, Any]:
    def git(*args: str) -> str:
        return subprocess.run(
            ["git", *args], cwd=REPO_ROOT, capture_output=True, text=True, timeout=10
        ).stdout.strip()

    try:
        return {
            "commit": git("rev-parse", "HEAD") or None,
            "dirty": bool(git("status", "--porcelain", "--untracked-files=no")),
        }
    except (OSError, subprocess.SubprocessError):
        return {"commit": None, "dirty": None}


def now_iso() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _round(value: float) -> float:
    if value == 0 or not isinstance(value, float):
        return value
    magnitude = abs(value)
    return round(value, 4 if magnitude < 10 else 2 if magnitude < 1000 else 1)
