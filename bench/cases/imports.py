"""``import_vs_boto3``: cold-start cost, in fresh interpreters, against ``import boto3``; and batch memory.

- Wall time of ``python -c "import projector.handler"`` vs ``python -c "import boto3"``, alternating,
  median of the runs (the goal's figure); the children's CPU time too (steadier on a busy machine); ``-X importtime`` of the handler gives the top entries (self and cumulative).
- Also reported (no goal): import plus wiring the engine (``runtime().stream_applier``: settings, projections,
  sinks, clients), which is what the first invocation pays on top of the import.
- Peak memory of one batch through ``lambda_handler`` on the real OpenSearch, in its own process
  (``bench.probe``): tracemalloc's peak during the call and the process's peak RSS (VmHWM).
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from bench.env import DOCUMENTS_MODULE
from bench.harness import REPO_ROOT, Goal, Samples, alternate, compare, log, timed

if TYPE_CHECKING:
    from bench.cases import Context

GOAL = Goal("<=", 1.0)
HANDLER = "import projector.handler"
CODE = {
    "ours": HANDLER,
    "boto3": "import boto3",
    "wired": "import projector.handler as h; h.runtime().stream_applier",
}
LABELS = {
    "ours": "python -c 'import projector.handler'",
    "boto3": "python -c 'import boto3'",
    "wired": "import + runtime().stream_applier",
}


def _python(code: str, *flags: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    return subprocess.run(
        [sys.executable, *flags, "-c", code],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=True,
    )


def _cold(code: str) -> tuple[float, float]:
    """Wall and CPU (user + system) seconds of one fresh interpreter running ``code``."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    seconds, _ = timed(lambda: _python(code))
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return seconds, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def import_times(top: int = 12) -> dict[str, Any]:
    """The heaviest modules of ``import projector.handler`` by self time and the top-level packages by total."""
    rows: list[tuple[int, int, int, str]] = []
    for line in _python(HANDLER, "-X", "importtime").stderr.splitlines():
        if not line.startswith("import time:") or "|" not in line or "self [us]" in line:
            continue
        self_us, total_us, name = line.removeprefix("import time:").split("|", 2)
        depth = (len(name) - len(name.lstrip())) // 2
        rows.append((int(self_us), int(total_us), depth, name.strip()))
    by_self = sorted(rows, reverse=True)[:top]
    packages: dict[str, int] = {}
    for row in rows:
        package = row[3].split(".", 1)[0]
        packages[package] = packages.get(package, 0) + row[0]
    heaviest = sorted(packages.items(), key=lambda entry: entry[1], reverse=True)[:top]
    return {
        "total_ms": round(sum(r[0] for r in rows) / 1000, 1),
        "top_self_ms": [
            {"module": r[3], "self_ms": round(r[0] / 1000, 1), "total_ms": round(r[1] / 1000, 1)}
            for r in by_self
        ],
        "by_package_self_ms": {name: round(us / 1000, 1) for name, us in heaviest},
    }


def batch_memory(ctx: Context) -> dict[str, Any]:
    """Peak memory of one batch of ``memory_batch`` records through the handler, in a fresh process."""
    ctx.env.use(DOCUMENTS_MODULE)
    out = ctx.env.folder / "probe.json"
    _python(f"import bench.probe as p; p.main({ctx.sizes.memory_batch}, {str(out)!r})", timeout=300)
    memory: dict[str, Any] = json.loads(out.read_text())
    return memory


def import_vs_boto3(ctx: Context) -> dict[str, Any]:
    runs = ctx.sizes.import_runs
    ctx.env.use(DOCUMENTS_MODULE)
    if not ctx.quick:
        for code in CODE.values():  # first runs warm the file cache alike
            _python(code)
    wall = {name: Samples(label, "ms") for name, label in LABELS.items()}
    cpu = {name: Samples(label, "ms CPU") for name, label in LABELS.items()}

    def contender(name: str) -> Callable[[int], None]:
        def run(_: int) -> None:
            seconds, cpu_seconds = _cold(CODE[name])
            wall[name].add(1000 * seconds)
            cpu[name].add(1000 * cpu_seconds)

        return run

    alternate(runs, {name: contender(name) for name in CODE})
    log(
        f"  import projector.handler {wall['ours'].median:.0f} ms, import boto3 {wall['boto3'].median:.0f} ms, "
        f"wired engine {wall['wired'].median:.0f} ms (wall)"
    )
    memory = batch_memory(ctx)
    log(
        f"  {memory['records']}-record batch: tracemalloc peak {memory['tracemalloc_peak_mib']} MiB, "
        f"peak RSS {memory['peak_rss_mib']} MiB"
    )
    by_cpu = compare(cpu["ours"], cpu["boto3"], GOAL)
    return compare(
        wall["ours"],
        wall["boto3"],
        GOAL,
        wired_engine=wall["wired"].to_json(),
        cpu_time={
            "ratio": by_cpu["ratio"],
            "ratio_spread": by_cpu["ratio_spread"],
            "subject": by_cpu["subject"],
            "baseline": by_cpu["baseline"],
            "wired_engine": cpu["wired"].to_json(),
        },
        importtime=import_times(),
        batch_memory=memory,
    )
