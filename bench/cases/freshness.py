"""``freshness``: a table write until it is visible in search, through ``projector run``.

A ``projector run`` process (defaults: batch size 100, no batching window, a 0.25 s poll of each shard
as Lambda's base rate of four polls a second) reads the stream of a table of its own; the bench writes
new orders at a steady rate with ``PutItem`` and, from a second thread, searches the read alias for the
ids not seen yet every ``POLL_S``. Latency: the moment ``PutItem`` returned to the moment a search
first finds the document (OpenSearch's 1 s refresh interval included, as a user's search sees it);
``realtime_get_*``: until a realtime ``mget`` finds it (projected, before the refresh).
"""

from __future__ import annotations

import os
import random
import statistics
import subprocess
import sys
import threading
import time
from typing import TYPE_CHECKING, Any

from bench.env import DOCUMENTS_MODULE, dynamodb_client, opensearch_client
from bench.harness import REPO_ROOT, STDOUT_LOG, log

if TYPE_CHECKING:
    from bench.cases import Context

GOAL_P99_S = 1.5
POLL_S = 0.02
WARMUP_WRITES = 3


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "projector.cli.main", *args]


def _percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(share * len(ordered) + 0.5) - 1))]


class _Watcher(threading.Thread):
    """Searches the read alias for pending ids; records when each first shows up."""

    def __init__(self, alias: str) -> None:
        super().__init__(daemon=True)
        self.client = opensearch_client(timeout=30)
        self.alias = alias
        self.pending: dict[str, float] = {}  # id -> when PutItem returned
        self.latencies: dict[str, float] = {}  # found by a search (the user's view)
        self.realtime: dict[str, float] = {}  # found by a realtime mget (projected, not yet refreshed)
        self.lock = threading.Lock()
        self.stopped = threading.Event()

    def expect(self, order_id: str, committed: float) -> None:
        with self.lock:
            self.pending[order_id] = committed

    def run(self) -> None:
        while not self.stopped.is_set():
            with self.lock:
                ids = list(self.pending)
            if ids:
                unseen = [order_id for order_id in ids if order_id not in self.realtime]
                if unseen:
                    got = self.client.mget(index=self.alias, body={"ids": unseen}, _source=False)
                    now = time.monotonic()
                    with self.lock:
                        for doc in got["docs"]:
                            if doc.get("found") and doc["_id"] in self.pending:
                                self.realtime[doc["_id"]] = now - self.pending[doc["_id"]]
                found = self.client.search(
                    index=self.alias,
                    body={"query": {"ids": {"values": ids}}, "size": len(ids), "_source": False},
                    ignore_unavailable=True,
                )
                seen = time.monotonic()
                with self.lock:
                    for hit in found["hits"]["hits"]:
                        committed = self.pending.pop(hit["_id"], None)
                        if committed is not None:
                            self.latencies[hit["_id"]] = seen - committed
            time.sleep(POLL_S)

    def wait_empty(self, timeout: float) -> bool:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            with self.lock:
                if not self.pending:
                    return True
            time.sleep(0.05)
        return False


def freshness(ctx: Context) -> dict[str, Any]:
    from boto3.dynamodb.types import TypeSerializer

    from devservers.workload import make_order

    sizes = ctx.sizes
    env = ctx.env
    env.use(DOCUMENTS_MODULE)
    table = f"bench-{env.token}-fresh"
    os.environ["PROJECTOR_SOURCE_TABLE"] = table  # a table of its own: the stream holds only these writes
    variables = dict(os.environ)
    subprocess.run(
        _cli("setup", "--with-source-table"),
        env=variables,
        cwd=REPO_ROOT,
        check=True,
        capture_output=True,
        timeout=120,
    )
    log(f"  table {table} and indexes set up")
    dynamodb = dynamodb_client()
    serialize = TypeSerializer().serialize
    rng = random.Random(19)
    put_seconds: list[float] = []
    watcher = _Watcher(f"{env.index_prefix}orders")
    watcher.start()
    with open(STDOUT_LOG, "ab") as output:
        runner = subprocess.Popen(_cli("run"), env=variables, cwd=REPO_ROOT, stdout=output, stderr=output)
    try:

        def write(number: int) -> str:
            order_id = f"F{number:07d}"
            item = {key: serialize(value) for key, value in make_order(rng, order_id).items()}
            sent = time.monotonic()
            dynamodb.put_item(TableName=table, Item=item)
            watcher.expect(order_id, time.monotonic())
            put_seconds.append(time.monotonic() - sent)
            return order_id

        # Warm-up: the runner has started, imported the engine and found the shard.
        warm = [write(n) for n in range(WARMUP_WRITES)]
        if not watcher.wait_empty(120):
            raise RuntimeError("the warm-up writes never became visible: is `projector run` working?")
        log("  projector run is projecting: measuring")
        with watcher.lock:
            for order_id in warm:
                watcher.latencies.pop(order_id, None)
                watcher.realtime.pop(order_id, None)
        count, rate = sizes.freshness_writes, sizes.freshness_rate
        start = time.monotonic()
        for n in range(count):
            delay = start + n / rate - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            write(WARMUP_WRITES + n)
        achieved = count / (time.monotonic() - start)
        complete = watcher.wait_empty(60)
    finally:
        watcher.stopped.set()
        runner.terminate()
        try:
            runner.wait(timeout=30)
        except subprocess.TimeoutExpired:
            runner.kill()
        watcher.join(timeout=10)
        try:
            dynamodb.delete_table(TableName=table)
        except Exception as error:  # cleanup must not hide the figures
            log(f"cleanup of table {table} failed: {error}")
    values = list(watcher.latencies.values())
    p50, p99 = statistics.median(values), _percentile(values, 0.99)
    fetched = list(watcher.realtime.values())
    log(f"  {len(values)} writes at {achieved:.1f}/s (asked {rate:g}/s): p50 {p50:.3f} s, p99 {p99:.3f} s")
    return {
        "status": "measured",
        "subject": {
            "label": "PutItem to visible in search, through projector run",
            "unit": "s (p50)",
            "median": round(p50, 4),
            "runs": len(values),
            "min": round(min(values), 4),
            "max": round(max(values), 4),
            "stdev": round(statistics.stdev(values), 4) if len(values) > 1 else 0.0,
            "spread_pct": round(100 * (max(values) - min(values)) / p50, 2) if p50 else 0.0,
            "samples": [round(v, 4) for v in sorted(values)] if len(values) <= 50 else [],
        },
        "baseline": None,
        "ratio": round(p99, 4),
        "ratio_spread": None,
        "p50_s": round(p50, 4),
        "p90_s": round(_percentile(values, 0.9), 4),
        "p99_s": round(p99, 4),
        "realtime_get_p50_s": round(statistics.median(fetched), 4) if fetched else None,
        "realtime_get_p99_s": round(_percentile(fetched, 0.99), 4) if fetched else None,
        "writes": count,
        "writes_per_second": rate,
        "achieved_writes_per_second": round(achieved, 2),
        "put_item_p50_s": round(statistics.median(put_seconds), 4),
        "all_visible": complete,
        "poll_interval_s": 0.25,
        "search_poll_s": POLL_S,
        "goal": f"p99 <= {GOAL_P99_S:g} s",
        "goal_met": complete and p99 <= GOAL_P99_S,
        "note": "the ratio column holds p99 in seconds; Lambda's own stream polling (4 times a second) "
        "is modelled by projector run's 0.25 s poll",
    }
