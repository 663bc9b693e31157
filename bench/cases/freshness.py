"""``freshness``: a table write until it is visible in search, through ``projector run``.

A ``projector run`` process (defaults: batch size 100, no batching window, a 0.25 s poll of each shard
as Lambda's base rate of four polls a second) reads the stream of a table of its own; the bench writes
new orders at a steady rate with ``PutItem`` and, from a second thread, searches the read alias for the
ids not seen yet every ``POLL_S``. Latency: the moment ``PutItem`` returned to the moment a search
first finds the document (OpenSearch's 1 s refresh interval included, as a user's search sees it);
``projected_*``: until the handler's batch holding it was acknowledged (written, before the refresh).
The watcher only searches: a realtime ``mget`` of a written but unrefreshed id makes OpenSearch refresh
its internal reader (a new segment each time), which at a 20 ms poll is load a user's search never adds.

``breakdown`` says where the time goes, per write: until the runner's batch holding it started
(stream, idle poll, GetRecords), the batch through the handler (``projector run --json`` reports each
batch; the stream holds only these writes, in order, so the n-th record is the n-th write), and from
the batch's end to a search finding it (the index's refresh). Beside it: sampled
GetRecords calls (one every ``PROBE_S``), the search poll's own period, and the index's refreshes
during the measured writes (external ones: count and mean spacing; internal ones: count).
"""

from __future__ import annotations

import json
import os
import random
import statistics
import subprocess
import sys
import threading
import time
from typing import TYPE_CHECKING, Any

from bench.env import DOCUMENTS_MODULE, MOTO_URL, REGION, dynamodb_client, opensearch_client
from bench.harness import REPO_ROOT, STDOUT_LOG, log

if TYPE_CHECKING:
    from bench.cases import Context

GOAL_P99_S = 1.5
POLL_S = 0.02
WARMUP_WRITES = 3
PROBE_S = 0.5


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
        self.lock = threading.Lock()
        self.stopped = threading.Event()
        self.periods: list[float] = []  # one search poll to the next (the measurement's resolution)
        self.committed: dict[str, float] = {}  # id -> when PutItem returned, kept after it is found

    def expect(self, order_id: str, committed: float) -> None:
        with self.lock:
            self.pending[order_id] = committed
            self.committed[order_id] = committed

    def run(self) -> None:
        last = time.monotonic()
        while not self.stopped.is_set():
            with self.lock:
                ids = list(self.pending)
            if ids:
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
                self.periods.append(seen - last)
            time.sleep(POLL_S)
            last = time.monotonic()

    def wait_empty(self, timeout: float) -> bool:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            with self.lock:
                if not self.pending:
                    return True
            time.sleep(0.05)
        return False


class _Batches(threading.Thread):
    """Reads ``projector run --json``'s batch reports; the n-th record of the stream is the n-th write."""

    def __init__(self, stream: Any, log_file: Any) -> None:
        super().__init__(daemon=True)
        self.stream = stream
        self.log_file = log_file
        self.started: list[float] = []  # per record: when its batch's invocation started
        self.durations: list[float] = []  # per record: its batch's handler time
        self.sizes: list[int] = []

    def run(self) -> None:
        for line in self.stream:
            done = time.monotonic()
            self.log_file.write(line)
            try:
                report = json.loads(line)
            except ValueError:
                continue
            # Records leave the stream in order once applied (ok, a partial's prefix) or dead-lettered.
            moved = (
                report.get("applied", 0) if report.get("outcome") != "dead_lettered" else report["records"]
            )
            if not moved:
                continue
            took = report["duration_ms"] / 1000
            self.sizes.append(moved)
            self.started.extend([done - took] * moved)
            self.durations.extend([took] * moved)


class _Probe(threading.Thread):
    """Times a GetRecords call on the stream every ``PROBE_S``: moto's latency as the runner meets it."""

    def __init__(self, table: str) -> None:
        super().__init__(daemon=True)
        self.table = table
        self.seconds: list[float] = []
        self.stopped = threading.Event()

    def run(self) -> None:
        import boto3

        streams = boto3.client(
            "dynamodbstreams",
            endpoint_url=MOTO_URL,
            region_name=REGION,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )
        arn = dynamodb_client().describe_table(TableName=self.table)["Table"]["LatestStreamArn"]
        shard = streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"][-1]["ShardId"]
        iterator = streams.get_shard_iterator(StreamArn=arn, ShardId=shard, ShardIteratorType="LATEST")[
            "ShardIterator"
        ]
        while not self.stopped.wait(PROBE_S):
            sent = time.monotonic()
            answer = streams.get_records(ShardIterator=iterator, Limit=100)
            self.seconds.append(time.monotonic() - sent)
            iterator = answer.get("NextShardIterator") or iterator


def _refreshes(client: Any, index: str) -> tuple[int, int, int]:
    """The index's refreshes so far: external (they make writes searchable), their total ms, all."""
    stats = client.indices.stats(index=index, metric="refresh")["_all"]["primaries"]["refresh"]
    external = int(stats.get("external_total", stats["total"]))
    return (
        external,
        int(stats.get("external_total_time_in_millis", stats["total_time_in_millis"])),
        int(stats["total"]),
    )


def _spread(values: list[float]) -> dict[str, float] | None:
    if not values:
        return None
    return {
        "p50_s": round(statistics.median(values), 4),
        "p90_s": round(_percentile(values, 0.9), 4),
        "p99_s": round(_percentile(values, 0.99), 4),
        "max_s": round(max(values), 4),
    }


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
    output = open(STDOUT_LOG, "a")  # noqa: SIM115 (closed after the reader thread ends)
    runner = subprocess.Popen(
        _cli("run", "--json"),
        env=variables,
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        stderr=output,
        text=True,
    )
    batches = _Batches(runner.stdout, output)
    batches.start()
    probe = _Probe(table)
    search = opensearch_client(timeout=30)
    alias = f"{env.index_prefix}orders"
    refreshed: tuple[int, int, int] = (0, 0, 0)
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
        probe.start()
        count, rate = sizes.freshness_writes, sizes.freshness_rate
        refreshed_before = _refreshes(search, alias)
        start = time.monotonic()
        for n in range(count):
            delay = start + n / rate - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            write(WARMUP_WRITES + n)
        writing = time.monotonic() - start
        achieved = count / writing
        complete = watcher.wait_empty(60)
        refreshed_after = _refreshes(search, alias)
        refreshed = (
            refreshed_after[0] - refreshed_before[0],
            refreshed_after[1] - refreshed_before[1],
            refreshed_after[2] - refreshed_before[2],
        )
    finally:
        watcher.stopped.set()
        probe.stopped.set()
        runner.terminate()
        try:
            runner.wait(timeout=30)
        except subprocess.TimeoutExpired:
            runner.kill()
        watcher.join(timeout=10)
        batches.join(timeout=10)
        output.close()
        try:
            dynamodb.delete_table(TableName=table)
        except Exception as error:  # cleanup must not hide the figures
            log(f"cleanup of table {table} failed: {error}")
    values = list(watcher.latencies.values())
    p50, p99 = statistics.median(values), _percentile(values, 0.99)
    log(f"  {len(values)} writes at {achieved:.1f}/s (asked {rate:g}/s): p50 {p50:.3f} s, p99 {p99:.3f} s")
    breakdown, projected = _breakdown(watcher, batches, count)
    log(f"  breakdown: {json.dumps(breakdown)}")
    probe.join(timeout=10)
    refresh_count, refresh_ms, refresh_all = refreshed
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
        "projected_p50_s": round(statistics.median(projected), 4) if projected else None,
        "projected_p99_s": round(_percentile(projected, 0.99), 4) if projected else None,
        "writes": count,
        "writes_per_second": rate,
        "achieved_writes_per_second": round(achieved, 2),
        "put_item_p50_s": round(statistics.median(put_seconds), 4),
        "all_visible": complete,
        "poll_interval_s": 0.25,
        "breakdown": breakdown,
        "batch_records_mean": round(statistics.mean(batches.sizes), 2) if batches.sizes else None,
        "get_records_call": _spread(probe.seconds),
        "search_poll_period": _spread(watcher.periods),
        "refreshes": refresh_count,
        "refresh_mean_spacing_s": round(writing / refresh_count, 3) if refresh_count else None,
        "refresh_mean_ms": round(refresh_ms / refresh_count, 1) if refresh_count else None,
        "internal_refreshes": refresh_all - refresh_count,  # realtime reads of unrefreshed ids
        "search_poll_s": POLL_S,
        "goal": f"p99 <= {GOAL_P99_S:g} s",
        "goal_met": complete and p99 <= GOAL_P99_S,
        "note": "the ratio column holds p99 in seconds; Lambda's own stream polling (4 times a second) "
        "is modelled by projector run's 0.25 s poll",
    }


def _breakdown(watcher: _Watcher, batches: _Batches, count: int) -> tuple[dict[str, Any], list[float]]:
    """Per measured write: to its batch's start, the handler, and the batch-end-to-search gap (refresh).

    Also each write's time until its batch was acknowledged (projected, not yet searchable).
    """
    projected: list[float] = []
    to_batch: list[float] = []
    handler: list[float] = []
    to_search: list[float] = []
    slowest: list[tuple[float, dict[str, float]]] = []
    for n in range(WARMUP_WRITES, WARMUP_WRITES + count):
        order_id = f"F{n:07d}"
        total = watcher.latencies.get(order_id)
        if total is None or n >= len(batches.started):
            continue
        committed = watcher.committed[order_id]
        parts = {
            "to_batch_s": batches.started[n] - committed,
            "handler_s": batches.durations[n],
            "batch_end_to_search_s": total - (batches.started[n] + batches.durations[n] - committed),
        }
        projected.append(parts["to_batch_s"] + parts["handler_s"])
        to_batch.append(parts["to_batch_s"])
        handler.append(parts["handler_s"])
        to_search.append(parts["batch_end_to_search_s"])
        slowest.append((total, parts))
    slowest.sort(key=lambda pair: pair[0], reverse=True)
    tail = slowest[: max(1, len(slowest) // 100)]
    return {
        "writes": len(to_batch),
        "put_to_batch_start": _spread(to_batch),
        "handler": _spread(handler),
        "batch_end_to_search": _spread(to_search),
        "slowest_1pct_mean": {
            key: round(statistics.mean(parts[key] for _, parts in tail), 4) for key in tail[0][1]
        }
        if tail and slowest
        else None,
    }, projected
