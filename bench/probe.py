"""Run in a fresh process by ``import_vs_boto3``: memory of one batch through the real handler.

The PROJECTOR_* variables come from the parent (its run's index prefix, the ``orders``-only projections).
Writes one JSON object to ``out``: tracemalloc's peak during the call, and the peak RSS before and after.
"""

from __future__ import annotations

import json
import resource
import sys
import tracemalloc
from pathlib import Path


def _maxrss_mib() -> float:
    """This interpreter's peak RSS: VmHWM (ru_maxrss would carry the forking parent's peak across exec)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        pass
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def main(records: int, out: str) -> None:
    from bench.cases.documents import LambdaContext
    from bench.workload import make_workload
    from projector.handler import lambda_handler, runtime
    from projector.setup import setup

    batch = make_workload(records).records
    setup(runtime())
    before = _maxrss_mib()
    tracemalloc.start()
    response = lambda_handler({"Records": batch}, LambdaContext())
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    Path(out).write_text(
        json.dumps(
            {
                "records": len(batch),
                "failed": bool(response["batchItemFailures"]),
                "tracemalloc_peak_mib": round(peak / 2**20, 2),
                "peak_rss_before_mib": before,
                "peak_rss_mib": _maxrss_mib(),
            }
        )
    )


if __name__ == "__main__":
    main(int(sys.argv[1]), sys.argv[2])
