"""``scripts/bench``: run the cases, print the table, write ``bench/results.json``."""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.harness import REPO_ROOT, STDOUT_LOG, failed, git_commit, log, machine, now_iso, quiet_stdout

DEFAULT_OUT = REPO_ROOT / "bench" / "results.json"
CASES: tuple[str, ...] = (
    "handler_vs_bulk",
    "handler_vs_same_writes",
    "handler_vs_per_record",
    "known_states_gain",
    "cost_per_million",
    "freshness",
    "cpu_vs_deserializer",
    "import_vs_boto3",
    "aggregate_writes",
    "backfill_vs_scan",
    "export_vs_scan",
)


def _case(name: str) -> Callable[[Any], dict[str, Any]]:
    if name in ("handler_vs_bulk", "handler_vs_per_record"):
        from bench.cases import documents as module
    elif name == "handler_vs_same_writes":
        from bench.cases import writes as module  # type: ignore[no-redef]
    elif name == "known_states_gain":
        from bench.cases import known as module  # type: ignore[no-redef]
    elif name == "cost_per_million":
        from bench.cases import cost as module  # type: ignore[no-redef]
    elif name == "freshness":
        from bench.cases import freshness as module  # type: ignore[no-redef]
    elif name == "cpu_vs_deserializer":
        from bench.cases import cpu as module  # type: ignore[no-redef]
    elif name == "import_vs_boto3":
        from bench.cases import imports as module  # type: ignore[no-redef]
    elif name == "aggregate_writes":
        from bench.cases import aggregates as module  # type: ignore[no-redef]
    elif name == "export_vs_scan":
        from bench.cases import export as module  # type: ignore[no-redef]
    else:
        from bench.cases import backfill as module  # type: ignore[no-redef]
    case: Callable[[Any], dict[str, Any]] = getattr(module, name)
    return case


def _goal_of(name: str) -> Any:
    from bench.harness import Goal

    goals = {
        "handler_vs_bulk": Goal(">=", 0.8),
        "handler_vs_same_writes": Goal(">=", 0.8),
        "handler_vs_per_record": Goal(">=", 30),
        "known_states_gain": Goal(">=", 1.0),
        "cost_per_million": Goal("<=", 1.0),
        "freshness": Goal("<=", 1.5),
        "cpu_vs_deserializer": Goal("<=", 1.5),
        "import_vs_boto3": Goal("<=", 1.0),
        "aggregate_writes": Goal("<=", 1.0),
        "backfill_vs_scan": Goal(">=", 0.9),
        "export_vs_scan": Goal(">=", 1.0),
    }
    return goals[name]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="scripts/bench",
        description="projector against its baselines, "
        "side by side on the local servers (see docs/benchmarks.md)",
    )
    parser.add_argument(
        "--quick", action="store_true", help="small sizes: the smoke run (well under a minute)"
    )
    parser.add_argument(
        "--only",
        action="append",
        choices=CASES,
        metavar="CASE",
        help=f"run only CASE (repeatable): {', '.join(CASES)}",
    )
    parser.add_argument(
        "--records",
        type=int,
        metavar="N",
        help="a reduced run: the document cases' stream holds N records (batch size unchanged)",
    )
    parser.add_argument("--rounds", type=int, metavar="N", help="paired handler runs per document case")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"results file (default {DEFAULT_OUT})")
    parser.add_argument(
        "--markdown", action="store_true", help="print the table as Markdown (docs/benchmarks.md)"
    )
    parser.add_argument("--show", type=Path, metavar="RESULTS", help="only print the table of a results file")
    parser.add_argument(
        "--before",
        type=Path,
        metavar="RESULTS",
        help="with --show: print RESULTS (an earlier run) and --show's file side by side, ratio by ratio",
    )
    return parser.parse_args(argv)


def run(args: argparse.Namespace) -> dict[str, Any]:
    from bench.cases import Context, Sizes
    from bench.env import bench_env, ensure_servers

    sizes = Sizes.quick() if args.quick else Sizes()
    if args.records:
        sizes = dataclasses.replace(sizes, stream_records=args.records)
    if args.rounds:
        sizes = dataclasses.replace(sizes, handler_rounds=args.rounds)
    selected = [name for name in CASES if not args.only or name in args.only]
    results: dict[str, Any] = {
        "date": now_iso(),
        "git": git_commit(),
        "machine": machine(),
        "quick": args.quick,
        "sizes": sizes.to_json(),
    }
    started = time.monotonic()
    STDOUT_LOG.write_text("")
    log(f"engine output (Powertools logs, metrics) goes to {STDOUT_LOG}")
    log("checking the local servers (scripts/services start)")
    ensure_servers()
    with bench_env() as env:
        ctx = Context(sizes=sizes, env=env, quick=args.quick, results=results)
        for name in selected:
            log(f"{name} ...")
            case_started = time.monotonic()
            try:
                with quiet_stdout():
                    entry = _case(name)(ctx)
            except Exception as error:  # one broken case must not lose the others' figures
                log(f"{name} failed: {type(error).__name__}: {error}")
                entry = failed(error, _goal_of(name))
            entry["seconds"] = round(time.monotonic() - case_started, 1)
            results[name] = entry
    results["seconds"] = round(time.monotonic() - started, 1)
    results["machine"]["load_average_at_end"] = machine()["load_average_at_start"]
    return results


def main(argv: list[str] | None = None) -> int:
    from bench.table import compare, render

    args = parse_args(argv)
    if args.before and not args.show:
        print("scripts/bench: --before goes with --show", file=sys.stderr)
        return 2
    if args.show:
        shown = json.loads(args.show.read_text(encoding="utf-8"))
        if args.before:
            print(compare(json.loads(args.before.read_text(encoding="utf-8")), shown, markdown=args.markdown))
        else:
            print(render(shown, markdown=args.markdown))
        return 0
    results = run(args)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    print(render(results, markdown=args.markdown))
    print(f"\nwritten to {args.out} in {results['seconds']:.0f} s")
    broken = [name for name in CASES if results.get(name, {}).get("status") == "failed"]
    if broken:
        print(f"failed cases: {', '.join(broken)}", file=sys.stderr)
    return 1 if broken else 0
