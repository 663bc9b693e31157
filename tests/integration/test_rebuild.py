"""Zero-downtime rebuilds: over a corrupted index with readers and live changes, split across pieces,
rolled back (during and after), and resumed."""

from __future__ import annotations

import json
import threading
from typing import Any

import pytest

from devservers.workload import seed_orders
from projector.backfill import Backfill, BackfillOptions, Rebuilds
from projector.runtime import Runtime
from projector.sinks.aggregates import AggregateTable
from projector.sinks.opensearch import indexes
from projector.sinks.opensearch.types import META_FIELD
from tests.integration.test_backfill import (
    LiveChanges,
    StreamApplier,
    assert_matches_truth,
    backfill,
    cli,
    ready_runtime,
    verify,
)
from tests.support.polling import wait_until

pytestmark = pytest.mark.integration


@pytest.fixture
def runtime(settings_env: Any, opensearch: Any, dynamodb: Any) -> Runtime:
    return ready_runtime()


class Reader(threading.Thread):
    """Searches the read alias in a loop, as an application would; an error or empty answer is a failure."""

    def __init__(self, opensearch: Any, alias: str) -> None:
        super().__init__(daemon=True, name="reader")
        self.opensearch, self.alias = opensearch, alias
        self.reads = 0
        self.failures: list[str] = []
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            try:
                found = self.opensearch.search(
                    index=self.alias,
                    body={"query": {"term": {"status": "PAID"}}, "size": 5, "track_total_hits": True},
                )
                if found["hits"]["total"]["value"] == 0:
                    self.failures.append("no hits")
            except Exception as error:  # any failed read counts
                self.failures.append(f"{type(error).__name__}: {error}")
            self.reads += 1
            self.stop.wait(0.02)


def corrupt_documents(opensearch: Any, index: str, count: int) -> dict[str, str]:
    """Damage ``count`` documents in the physical index behind the stream: bodies, visibility, deletes."""
    hits = opensearch.search(
        index=index,
        body={"size": count, "sort": [{"order_id": "asc"}], "query": {"match_all": {}}},
        version=True,
    )["hits"]["hits"]
    damage: dict[str, str] = {}
    for number, hit in enumerate(hits):
        body = hit["_source"]
        if number % 3 == 0:
            body["status"], what = "BOGUS", "body"
        elif number % 3 == 1:
            body[META_FIELD]["visible"], what = False, "hidden"
        else:
            opensearch.delete(index=index, id=hit["_id"])
            damage[hit["_id"]] = "deleted"
            continue
        opensearch.index(
            index=index, id=hit["_id"], body=body, version=hit["_version"], version_type="external_gte"
        )
        damage[hit["_id"]] = what
    opensearch.indices.refresh(index=index)
    return damage


def corrupt_group(runtime: Runtime, projection: str, group: str, generation: int) -> None:
    runtime.dynamodb.update_item(
        TableName=runtime.settings.aggregates_table,
        Key={"pk": {"S": f"{projection}#group#{group}"}, "sk": {"S": f"g{generation}"}},
        UpdateExpression="ADD order_count :n",
        ExpressionAttributeValues={":n": {"N": "7"}},
    )


def test_a_rebuild_over_a_corrupted_index_keeps_readers_served_and_ends_exact(
    runtime: Runtime, dynamodb: Any, dynamodbstreams: Any, opensearch: Any
) -> None:
    settings = runtime.settings
    table, alias = settings.source_table, settings.index_prefix + "orders"
    ids = [order["order_id"] for order in seed_orders(dynamodb, table, 800)]
    assert backfill(runtime, segments=4).status == "finished"
    orders, customers = runtime.registry.document("orders"), runtime.registry.aggregate("customer_totals")
    old_index = indexes.read_index(opensearch, orders, settings.index_prefix)
    damage = corrupt_documents(opensearch, old_index, 45)
    corrupt_group(runtime, "customer_totals", "C0001", 1)
    before = verify(runtime, settle_s=0.5)
    assert before.projections["orders"].drift == 45 and before.projections["customer_totals"].drift == 1

    reader = Reader(opensearch, alias)
    applier = StreamApplier(runtime, dynamodb, dynamodbstreams)
    live = LiveChanges(dynamodb, table, ids, 150, seed=5)
    reader.start()
    applier.start()
    live.start()
    report = backfill(runtime, segments=4, rebuild=True)
    live.join()
    applier.drain()
    reader.stop.set()
    reader.join()

    assert report.status == "finished", report.to_json()
    new_index = report.rebuild["orders"]["reading"]
    assert new_index == report.rebuild["orders"]["target"] != old_index
    assert report.rebuild["customer_totals"]["reading"] == "g2"
    assert reader.reads > 20 and reader.failures == []
    assert indexes.read_index(opensearch, orders, settings.index_prefix) == new_index
    assert opensearch.indices.exists(index=old_index)  # kept for a rollback
    assert applier.errors == []
    after = verify(runtime)
    assert after.drift == 0, after.to_json()
    assert_matches_truth(runtime, dynamodb, opensearch)
    status = json.loads(cli("status", "--json").stdout)
    layout = {entry["projection"]: entry for entry in status["projections"]}
    assert layout["orders"]["read"] == new_index and not layout["orders"]["rebuilding"]
    assert layout["customer_totals"]["read"] == "g2" and not layout["customer_totals"]["needs_rebuild"]

    # rollback after the swap: back to the corrupted build, which verify --repair then fixes
    for name in ("orders", "customer_totals"):
        done = cli("rollback", name, "--json")
        assert done.returncode == 0, done.stderr
    assert indexes.read_index(opensearch, orders, settings.index_prefix) == old_index
    assert AggregateTable(dynamodb, settings).meta(customers).read_generation == 1
    drifted = cli(
        "verify", "--json", "--settle", "1", "--projection", "orders", "--projection", "customer_totals"
    )
    # The previous build kept receiving live writes, so damaged items the live changes touched are right
    # again; the rest of the deliberate damage (and the corrupted group) is still there.
    assert drifted.returncode == 1 and 0 < json.loads(drifted.stdout)["drift"] <= len(damage) + 1, (
        drifted.stdout
    )
    repaired = cli("verify", "--repair", "--json", "--settle", "1")
    assert repaired.returncode == 0, repaired.stdout + repaired.stderr
    assert json.loads(repaired.stdout)["after_repair"]["drift"] == 0
    assert_matches_truth(runtime, dynamodb, opensearch)


def test_a_split_rebuild_runs_in_phases_and_a_rebuild_rolls_back_before_its_swap(
    runtime: Runtime, dynamodb: Any, opensearch: Any
) -> None:
    settings = runtime.settings
    seed_orders(dynamodb, settings.source_table, 300)
    assert backfill(runtime, segments=2).status == "finished"
    orders = runtime.registry.document("orders")
    first = indexes.read_index(opensearch, orders, settings.index_prefix)

    piece = ["--total-segments", "4", "--rebuild", "--json", "--no-progress"]
    refused = cli(*piece, "--segment-range", "0:2")
    assert refused.returncode == 2 and "--rebuild-phase begin" in refused.stderr
    begun = cli("--rebuild-phase", "begin", "--json")
    assert begun.returncode == 0, begun.stderr
    targets = json.loads(begun.stdout)["projections"]
    assert targets["daily_sales"]["target"] == "g2"
    for part in ("0:2", "2:4"):
        done = cli(*piece, "--segment-range", part)
        assert done.returncode == 0, done.stderr
        assert json.loads(done.stdout)["rebuild"]["orders"]["target"] == targets["orders"]["target"]
    assert indexes.read_index(opensearch, orders, settings.index_prefix) == first  # not swapped by a piece
    finished = cli("--rebuild-phase", "finish", "--json")
    assert finished.returncode == 0, finished.stderr
    assert json.loads(finished.stdout)["projections"]["orders"]["reading"] == targets["orders"]["target"]
    assert verify(runtime).drift == 0

    # a rebuild abandoned before its swap: reads never moved, writes go back to one index / generation
    rebuilds = Rebuilds(runtime)
    for projection in runtime.registry.all:
        rebuilds.begin(projection)
        assert rebuilds.layout(projection).rebuilding
        done = cli("rollback", projection.name, "--json")
        assert done.returncode == 0 and json.loads(done.stdout)["was_rebuilding"], done.stderr
        layout = rebuilds.layout(projection)
        assert not layout.rebuilding and layout.writes == (layout.read,)
    assert indexes.read_index(opensearch, orders, settings.index_prefix) == targets["orders"]["target"]
    assert verify(runtime).drift == 0


def test_a_stopped_rebuild_resumes_into_the_same_index_and_swaps_once(
    runtime: Runtime, dynamodb: Any, opensearch: Any
) -> None:
    settings = runtime.settings
    seed_orders(dynamodb, settings.source_table, 300)
    assert backfill(runtime, segments=2).status == "finished"
    job = Backfill(
        runtime,
        BackfillOptions(
            segments=3, page_size=20, rebuild=True, rate=30, projections=("orders", "daily_sales")
        ),
    )
    source = job.source()
    checkpoint = job.prepare(source)
    results: list[Any] = []
    worker = threading.Thread(target=lambda: results.append(job.run(source, checkpoint)))
    worker.start()
    wait_until(lambda: sum(state.pages for state in checkpoint.states.values()) >= 2, 120, what="two pages")
    job.stop("test")
    worker.join(timeout=60)
    assert results[0].status == "stopped"
    building = Rebuilds(runtime).layout(runtime.registry.get("orders"))
    assert building.rebuilding and building.read != checkpoint.rebuild["orders"]["target"]

    job_args = ["--rebuild", "--segments", "3", "--page-size", "20", "--json", "--no-progress"]
    refused = cli(*job_args, "--resume", "--projection", "orders")
    assert refused.returncode == 2 and "covers projections" in refused.stderr
    resumed = cli(*job_args, "--resume")
    assert resumed.returncode == 0, resumed.stderr
    summary = json.loads(resumed.stdout)
    assert summary["run_id"] == checkpoint.run_id
    assert summary["rebuild"]["orders"]["reading"] == checkpoint.rebuild["orders"]["target"]
    assert summary["rebuild"]["daily_sales"]["reading"] == "g2"
    assert Rebuilds(runtime).layout(runtime.registry.get("customer_totals")).read == "g1"
    assert verify(runtime).drift == 0
