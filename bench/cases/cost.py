"""``cost_per_million``: what a million changes cost in Lambda, from the handler's measured batch time.

Inputs, both measured in this run: the handler's wall time per batch in ``handler_vs_same_writes``
(scaled to a 1,000-record batch when the run's batch size differs) and the per-record handler's rate in
``handler_vs_per_record``; and the function's ``MemorySize`` read from infra/template.yaml. A batch of
``B`` records is assumed to take ``B`` times the per-record time of the 1,000-record batch (the fixed
cost per invocation is small next to a batch's writes); Lambda bills each invocation's duration rounded
up to the millisecond. Local speed is one full core; a 512 MB function gets about 512/1769 of a vCPU,
so ``cpu_bound_gb_seconds`` is the bound if the handler were CPU-bound all the time.
"""

from __future__ import annotations

import math
import re
from typing import TYPE_CHECKING, Any

from bench.harness import REPO_ROOT, Goal

if TYPE_CHECKING:
    from bench.cases import Context

BATCH_SIZES = (100, 1_000, 10_000)
CHANGES = 1_000_000
FULL_VCPU_MB = 1769  # Lambda: 1,769 MB of memory gets the equivalent of one vCPU
# us-east-1 x86 list prices (arm64 is about 20% less per GB-second); the GB-seconds are what to re-price
PRICE_PER_GB_SECOND = 0.0000166667
PRICE_PER_MILLION_REQUESTS = 0.20
GOAL = Goal("<=", 1.0)  # reported, not a target: the handler's cost against the per-record handler's


def memory_mb() -> int:
    template = (REPO_ROOT / "infra" / "template.yaml").read_text(encoding="utf-8")
    match = re.search(r"^\s*MemorySize:\s*(\d+)\s*$", template, re.MULTILINE)
    if match is None:
        raise ValueError("no MemorySize in infra/template.yaml")
    return int(match.group(1))


def price(seconds_per_record: float, batch_size: int, memory: int) -> dict[str, Any]:
    invocations = math.ceil(CHANGES / batch_size)
    billed_ms = math.ceil(seconds_per_record * batch_size * 1000)
    gb_seconds = invocations * billed_ms / 1000 * memory / 1024
    cpu_bound = gb_seconds * max(1.0, FULL_VCPU_MB / memory)
    usd = gb_seconds * PRICE_PER_GB_SECOND + invocations / 1e6 * PRICE_PER_MILLION_REQUESTS
    return {
        "requests": invocations,
        "billed_ms_per_invocation": billed_ms,
        "gb_seconds": round(gb_seconds, 2),
        "cpu_bound_gb_seconds": round(cpu_bound, 2),
        "usd": round(usd, 4),
    }


def cost_per_million(ctx: Context) -> dict[str, Any]:
    from bench.cases.documents import handler_vs_per_record
    from bench.cases.writes import handler_vs_same_writes

    same = ctx.results.get("handler_vs_same_writes") or handler_vs_same_writes(ctx)
    naive = ctx.results.get("handler_vs_per_record") or handler_vs_per_record(ctx)
    if same.get("status") != "measured" or naive.get("status") != "measured":
        raise RuntimeError("handler_vs_same_writes or handler_vs_per_record has no figures")
    handler_per_record = same["handler_seconds_per_batch"] / same["batch_size"]
    naive_per_record = 1 / naive["baseline"]["median"]
    memory = memory_mb()
    handler = {str(size): price(handler_per_record, size, memory) for size in BATCH_SIZES}
    per_record = {str(size): price(naive_per_record, size, memory) for size in BATCH_SIZES}
    ratio = handler["1000"]["gb_seconds"] / per_record["1000"]["gb_seconds"]
    return {
        "status": "measured",
        "subject": {
            "label": "projector handler, GB-s per million changes at batch 1,000",
            "unit": "GB-s",
            "median": handler["1000"]["gb_seconds"],
            "runs": 1,
            "min": handler["1000"]["gb_seconds"],
            "max": handler["1000"]["gb_seconds"],
            "stdev": 0.0,
            "spread_pct": 0.0,
            "samples": [handler["1000"]["gb_seconds"]],
        },
        "baseline": {
            "label": "per-record handler (AWS tutorial), same",
            "unit": "GB-s",
            "median": per_record["1000"]["gb_seconds"],
            "runs": 1,
            "min": per_record["1000"]["gb_seconds"],
            "max": per_record["1000"]["gb_seconds"],
            "stdev": 0.0,
            "spread_pct": 0.0,
            "samples": [per_record["1000"]["gb_seconds"]],
        },
        "ratio": round(ratio, 4),
        "ratio_spread": None,
        "goal": f"ratio {GOAL}",
        "goal_met": GOAL.met(ratio),
        "memory_mb": memory,
        "changes": CHANGES,
        "handler_ms_per_1000_records": round(handler_per_record * 1000 * 1000, 2),
        "per_record_ms_per_1000_records": round(naive_per_record * 1000 * 1000, 2),
        "measured_batch_size": same["batch_size"],
        "handler": handler,
        "per_record_handler": per_record,
        "prices": {
            "usd_per_gb_second": PRICE_PER_GB_SECOND,
            "usd_per_million_requests": PRICE_PER_MILLION_REQUESTS,
            "where": "us-east-1, x86_64 list price",
        },
        "note": "linear in the batch size from the measured per-record time; local wall time on a full "
        "core (cpu_bound_gb_seconds: if all of it were CPU at the function's vCPU share)",
    }
