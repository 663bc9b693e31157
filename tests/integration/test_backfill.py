"""Backfill against the real servers: racing live changes, dry runs, SIGTERM, kill -9 and --resume.

The helpers here (a stream applier thread, a live-change thread, truth checks) are shared with
test_rebuild.py and test_verify.py.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from devservers.workload import change_order, seed_orders
from projector.backfill import Backfill, BackfillOptions, BackfillReport, Checkpoint, SegmentRange
from projector.backfill.run import rebuilder
from projector.retry import Deadline
from projector.runner import to_lambda_record
from projector.runtime import Runtime
from projector.setup import setup
from projector.sinks.aggregates import read_aggregate
from projector.verify import Verifier, VerifyOptions, VerifyReport
from tests.support.polling import wait_until
from tests.support.truth import product_sales_drift, same_document, scan_items, visible_documents

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "scripts" / "backfill"


# ---------------------------------------------------------------- shared helpers


def ready_runtime() -> Runtime:
    """A runtime on this test's own tables and indexes (``settings_env``), with everything set up."""
    engine = Runtime()
    setup(engine, with_source_table=True)
    return engine


@pytest.fixture
def runtime(settings_env: Any, opensearch: Any, dynamodb: Any) -> Runtime:
    return ready_runtime()


class StreamApplier(threading.Thread):
    """Feeds the table's stream through the pipeline as Lambda would, from its creation until drained.

    Its shard iterator is taken at LATEST when it is created, so every change made afterwards is applied
    and nothing before (the seeded items are the backfill's job).
    """

    def __init__(self, runtime: Runtime, dynamodb: Any, streams: Any, batch: int = 100) -> None:
        super().__init__(daemon=True, name="stream-applier")
        self.runtime, self.streams, self.batch = runtime, streams, batch
        self.arn = dynamodb.describe_table(TableName=runtime.settings.source_table)["Table"][
            "LatestStreamArn"
        ]
        [shard] = streams.describe_stream(StreamArn=self.arn)["StreamDescription"]["Shards"]
        self.iterator = streams.get_shard_iterator(
            StreamArn=self.arn, ShardId=shard["ShardId"], ShardIteratorType="LATEST"
        )["ShardIterator"]
        self.pending: list[dict[str, Any]] = []
        self.applied = 0
        self.errors: list[str] = []
        self._halt = threading.Event()

    def step(self) -> int:
        """Read what is new, apply it in batches; a failed batch is resent from its failed record."""
        page = self.streams.get_records(ShardIterator=self.iterator, Limit=1000)
        self.iterator = page["NextShardIterator"]
        region = self.streams.meta.region_name
        self.pending += [to_lambda_record(raw, self.arn, region) for raw in page["Records"]]
        while self.pending:
            chunk = self.pending[: self.batch]
            outcome = self.runtime.stream_applier.apply(chunk, Deadline.never())
            done = len(chunk) if outcome.first_failed is None else outcome.first_failed
            if outcome.first_failed is not None:
                self.errors.append(str(outcome.failures))
            self.pending = self.pending[done:]
            self.applied += done
            if not done:
                break
        return len(page["Records"])

    def run(self) -> None:
        while not self._halt.is_set():
            if not self.step():
                self._halt.wait(0.2)

    def drain(self) -> None:
        """Stop the thread, then apply whatever is left."""
        self._halt.set()
        if self.ident is not None:  # started
            self.join(timeout=120)
        while self.step() or self.pending:
            pass


class LiveChanges(threading.Thread):
    """Applies ``count`` random changes (updates, moves, cancels, deletes, re-creations) to seeded orders."""

    def __init__(
        self, dynamodb: Any, table: str, ids: list[str], count: int, seed: int = 11, pause_s: float = 0.0
    ) -> None:
        super().__init__(daemon=True, name="live-changes")
        self.dynamodb, self.table, self.ids, self.count = dynamodb, table, ids, count
        self.rng = random.Random(seed)
        self.pause_s = pause_s
        self.kinds: Counter[str] = Counter()
        self.halt = threading.Event()

    def run(self) -> None:
        for _ in range(self.count):
            if self.halt.is_set():
                return
            self.kinds[change_order(self.dynamodb, self.table, self.rng, self.rng.choice(self.ids))] += 1
            if self.pause_s:
                time.sleep(self.pause_s)


def backfill(runtime: Runtime, **options: Any) -> BackfillReport:
    job = Backfill(runtime, BackfillOptions(**options))
    source = job.source()
    return job.run(source, job.prepare(source))


def verify(runtime: Runtime, settle_s: float = 1.0, **options: Any) -> VerifyReport:
    return Verifier(runtime, VerifyOptions(settle_s=settle_s, **options), rebuild=rebuilder(runtime)).run()


def assert_matches_truth(runtime: Runtime, dynamodb: Any, opensearch: Any) -> None:
    """An independent check of every projection against the source table (no verify code involved)."""
    settings = runtime.settings
    truth = scan_items(dynamodb, settings.source_table)
    documents = visible_documents(opensearch, settings.index_prefix + "orders")
    assert sorted(documents) == sorted(truth)
    wrong = [key for key, item in truth.items() if not same_document(item, documents[key])]
    assert wrong == []
    customers: dict[str, list[Decimal]] = {}
    days: dict[str, list[Decimal]] = {}
    for item in truth.values():
        if item["status"] != "CANCELLED":
            customers.setdefault(item["customer_id"], []).append(item["total"])
        if item["status"] in ("PAID", "SHIPPED"):
            days.setdefault(item["created_at"][:10], []).append(item["total"])
    for name, groups in (("customer_totals", customers), ("daily_sales", days)):
        projection = runtime.registry.aggregate(name)
        for key, totals in groups.items():
            found = read_aggregate(runtime.dynamodb, settings, projection, key)
            assert (found["order_count"], found["revenue"]) == (len(totals), f"{sum(totals):.2f}"), (
                name,
                key,
            )
    assert product_sales_drift(dynamodb, settings.aggregates_table, truth) == []


def cli(*args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """`scripts/backfill` (or another command through `projector`) in a subprocess with this test's env."""
    command = (
        [str(SCRIPT), *args]
        if not args or args[0].startswith("-")
        else [sys.executable, "-m", "projector.cli.main", *args]
    )
    return subprocess.run(
        command, capture_output=True, text=True, timeout=timeout, env=os.environ.copy(), cwd=REPO
    )


# ---------------------------------------------------------------- tests


def test_a_backfill_racing_live_changes_ends_exactly_on_the_source(
    runtime: Runtime, dynamodb: Any, dynamodbstreams: Any, opensearch: Any
) -> None:
    table = runtime.settings.source_table
    ids = [order["order_id"] for order in seed_orders(dynamodb, table, 1500)]
    applier = StreamApplier(runtime, dynamodb, dynamodbstreams)
    live = LiveChanges(dynamodb, table, ids, 300)
    applier.start()
    live.start()
    report = backfill(runtime, segments=4, page_size=100)
    live.join()
    applier.drain()
    assert report.status == "finished", report.to_json()
    assert report.items >= 1350 and report.totals.failed == 0 and report.totals.poison == 0
    assert applier.errors == [] and applier.applied >= 300
    assert live.kinds["delete"] > 0 and live.kinds["update"] > 0
    assert sum(s.pages for s in report.segments.values()) >= 4
    result = verify(runtime)
    assert result.drift == 0, json.dumps(result.to_json())
    assert result.checked == len(scan_items(dynamodb, table))
    assert_matches_truth(runtime, dynamodb, opensearch)


def test_a_dry_run_projects_everything_and_writes_nothing(
    runtime: Runtime, dynamodb: Any, opensearch: Any
) -> None:
    seed_orders(dynamodb, runtime.settings.source_table, 200)
    done = cli("--dry-run", "--segments", "2", "--json")
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert summary["dry_run"] and summary["items_scanned"] == 200 and summary["status"] == "finished"
    assert summary["would_write"]["orders"] == {"documents": 200, "hidden": 0}
    assert summary["would_write"]["customer_totals"]["items_contributing"] > 0
    assert summary["checkpoint"] is None
    opensearch.indices.refresh(index=runtime.settings.index_prefix + "orders")
    assert opensearch.count(index=runtime.settings.index_prefix + "orders")["count"] == 0
    rows = dynamodb.scan(TableName=runtime.settings.aggregates_table)["Items"]
    assert [row for row in rows if "#group#" in row["pk"]["S"] or "#item#" in row["pk"]["S"]] == []
    assert not (Path(runtime.settings.state_dir) / "backfill").exists()


def test_sigterm_then_kill_9_then_resume_never_rereads_a_finished_segment(
    runtime: Runtime, dynamodb: Any, opensearch: Any
) -> None:
    seed_orders(dynamodb, runtime.settings.source_table, 900)
    path = Checkpoint.path_for(runtime.settings.state_dir, runtime.settings.source_table, SegmentRange(6))
    args = ["--total-segments", "6", "--segments", "2", "--page-size", "50", "--json", "--no-progress"]

    def done_segments() -> set[int]:
        try:
            checkpoint = Checkpoint.load(path)
        except Exception:
            return set()
        return {n for n, state in checkpoint.states.items() if state.done} if checkpoint else set()

    # 1. SIGTERM: the pages in flight are finished and checkpointed, exit 130
    first = subprocess.Popen(
        [str(SCRIPT), *args, "--rate", "100"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=os.environ.copy(),
    )
    wait_until(lambda: len(done_segments()) >= 1, 120, what="a finished segment")
    first.send_signal(signal.SIGTERM)
    out, err = first.communicate(timeout=60)
    assert first.returncode == 130, err
    stopped = json.loads(out)
    assert stopped["status"] == "stopped" and "SIGTERM" in stopped["stop_reason"]
    after_term = Checkpoint.load(path)
    assert after_term is not None and after_term.run_id == stopped["run_id"]
    assert sum(state.items for state in after_term.states.values()) == stopped["items_scanned"]

    # 2. --resume, then kill -9 midway: a torn run
    second = subprocess.Popen(
        [str(SCRIPT), *args, "--rate", "100", "--resume"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=os.environ.copy(),
    )
    finished_before = done_segments()
    wait_until(
        lambda: len(done_segments()) >= len(finished_before) + 1, 120, what="one more finished segment"
    )
    second.kill()
    second.communicate(timeout=30)
    killed = Checkpoint.load(path)
    assert killed is not None and not killed.done and killed.scan_started_at == after_term.scan_started_at
    done_at_kill = {n for n, state in killed.states.items() if state.done}
    pages_at_kill = {n: state.pages for n, state in killed.states.items()}

    # 3. --resume to the end: finished segments are skipped, unfinished ones go on from their key
    third = cli(*args, "--resume")
    assert third.returncode == 0, third.stderr
    summary = json.loads(third.stdout)
    assert summary["status"] == "finished" and summary["resumed"] and summary["run_id"] == stopped["run_id"]
    assert summary["scan_started_at"] == after_term.scan_started_at
    for segment in summary["segments"]:
        if segment["segment"] in done_at_kill:
            assert segment["skipped"] and segment["pages"] == 0 and segment["items"] == 0, segment
        else:
            assert segment["done"] and not segment["skipped"]
    final = Checkpoint.load(path)
    assert final is not None and final.done and final.finished_at is not None
    for number, state in final.states.items():
        resumed_pages = next(s["pages"] for s in summary["segments"] if s["segment"] == number)
        assert state.pages == pages_at_kill[number] + resumed_pages  # each page checkpointed once
    # every item was read; at most the pages in flight at each stop were read twice
    assert sum(state.items for state in final.states.values()) == 900
    assert verify(runtime).drift == 0
    assert_matches_truth(runtime, dynamodb, opensearch)
    again = cli(*args, "--resume")
    assert again.returncode == 0 and json.loads(again.stdout)["items_scanned"] == 0  # nothing left to do


@pytest.mark.slow
@pytest.mark.timeout(4 * 3600)
@pytest.mark.skipif(
    os.environ.get("PROJECTOR_FULL_ACCEPTANCE") != "1",
    reason="full-size acceptance (50,000 orders): set PROJECTOR_FULL_ACCEPTANCE=1",
)
def test_full_size_acceptance(local_servers: Any) -> None:
    """50,000 orders backfilled while a second process applies 5,000 live changes through the handler,
    then a rebuild over a corrupted index, killed midway and resumed (see scripts/acceptance_backfill)."""
    done = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "acceptance_backfill"), "--json"],
        capture_output=True,
        text=True,
        timeout=4 * 3600,
        cwd=REPO,
    )
    figures = json.loads(done.stdout)
    assert figures["ok"], json.dumps(figures, indent=1)
    assert done.returncode == 0


def test_a_backfill_dead_letter_is_redriven_from_the_item_once_it_is_fixed(
    runtime: Runtime, dynamodb: Any, opensearch: Any
) -> None:
    from boto3.dynamodb.types import TypeSerializer

    from devservers.workload import make_order
    from projector.redrive import is_backfill_letter, redrive_backfill_letter

    table = runtime.settings.source_table
    order = {**make_order(random.Random(1), "P00001"), "created_at": "not-a-date"}  # OpenSearch refuses it
    put = lambda item: dynamodb.put_item(  # noqa: E731
        TableName=table, Item={k: TypeSerializer().serialize(v) for k, v in item.items()}
    )
    put(order)
    report = backfill(runtime, segments=1, projections=("orders",))
    assert report.status == "finished" and report.totals.poison == 1
    [letter] = list(runtime.dead_letters.list())
    assert is_backfill_letter(letter) and letter.record["order_id"] == {"S": "P00001"}
    assert redrive_backfill_letter(runtime, letter)[0] is False  # still poison: not stored again, reported
    assert len(list(runtime.dead_letters.list())) == 1
    put({**order, "created_at": "2026-01-02T03:04:05Z", "version": order["version"] + 1})
    assert redrive_backfill_letter(runtime, letter) == (True, None)
    opensearch.indices.refresh(index=runtime.settings.index_prefix + "orders")
    found = opensearch.get(index=runtime.settings.index_prefix + "orders", id="P00001")["_source"]
    assert found["created_at"] == "2026-01-02T03:04:05Z"
