"""Verify and repair against the real servers: every drift kind, exit codes, a flowing stream."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import pytest
from boto3.dynamodb.types import TypeSerializer

from devservers.workload import seed_orders
from projector.runtime import Runtime
from projector.sinks.aggregates import read_aggregate
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


def rewrite(opensearch: Any, index: str, doc_id: str, change: Any) -> None:
    """Edit a stored document in place behind the stream's back (same external version)."""
    found = opensearch.get(index=index, id=doc_id)
    body = found["_source"]
    change(body)
    opensearch.index(
        index=index, id=doc_id, body=body, version=found["_version"], version_type="external_gte"
    )


def test_each_kind_of_drift_is_found_and_repair_puts_it_right(
    runtime: Runtime, dynamodb: Any, dynamodbstreams: Any, opensearch: Any
) -> None:
    settings = runtime.settings
    table, aggregates = settings.source_table, settings.aggregates_table
    seed_orders(dynamodb, table, 300)
    assert backfill(runtime, segments=2).status == "finished"
    assert verify(runtime, settle_s=0).drift == 0
    index = indexes.read_index(opensearch, runtime.registry.document("orders"), settings.index_prefix)

    rewrite(opensearch, index, "O0000001", lambda body: body.update(status="BOGUS"))  # mismatch
    rewrite(opensearch, index, "O0000002", lambda body: body[META_FIELD].update(visible=False))  # missing
    opensearch.delete(index=index, id="O0000003")  # missing
    rewrite(opensearch, index, "O0000004", lambda body: body[META_FIELD].update(rev=0))  # stale
    ghost = opensearch.get(index=index, id="O0000005")["_source"]
    opensearch.index(
        index=index, id="GHOST", body={**ghost, "order_id": "GHOST"}, version=2, version_type="external"
    )  # extra
    opensearch.indices.refresh(index=index)
    customers = runtime.registry.aggregate("customer_totals")
    customer = next(
        key
        for key in (f"C{n:04d}" for n in range(200))
        if read_aggregate(dynamodb, settings, customers, key)["order_count"]
    )
    row = {"pk": {"S": f"customer_totals#group#{customer}"}, "sk": {"S": "g1"}}
    dynamodb.update_item(
        TableName=aggregates,
        Key=row,
        UpdateExpression="ADD revenue :x",
        ExpressionAttributeValues={":x": {"N": "0.01"}},
    )  # mismatch
    dynamodb.put_item(
        TableName=aggregates,
        Item={
            "pk": {"S": "daily_sales#group#1999-12-31"},
            "sk": {"S": "g1"},
            "order_count": {"N": "3"},
            "revenue": {"N": "9"},
        },
    )  # extra
    day = next(
        key
        for key in (f"2026-01-{d:02d}" for d in range(1, 31))
        if read_aggregate(dynamodb, settings, runtime.registry.aggregate("daily_sales"), key)["order_count"]
    )
    dynamodb.delete_item(
        TableName=aggregates, Key={"pk": {"S": f"daily_sales#group#{day}"}, "sk": {"S": "g1"}}
    )

    found = cli("verify", "--json", "--settle", "0.5")
    assert found.returncode == 1, found.stderr
    report = json.loads(found.stdout)
    assert report["checked"] == 300 and report["drift"] == 8
    counts = {
        name: {kind: v[kind] for kind in ("missing", "stale", "extra", "mismatch")}
        for name, v in report["projections"].items()
    }
    assert counts == {
        "orders": {"missing": 2, "stale": 1, "extra": 1, "mismatch": 1},
        "customer_totals": {"missing": 0, "stale": 0, "extra": 0, "mismatch": 1},
        "daily_sales": {"missing": 1, "stale": 0, "extra": 1, "mismatch": 0},
        "product_sales": {"missing": 0, "stale": 0, "extra": 0, "mismatch": 0},
    }
    examples = {(e["kind"], e["id"]) for v in report["projections"].values() for e in v["examples"]}
    assert {
        ("mismatch", "O0000001"),
        ("extra", "GHOST"),
        ("stale", "O0000004"),
        ("mismatch", customer),
        ("extra", "1999-12-31"),
        ("missing", day),
    } <= examples

    repaired = cli("verify", "--repair", "--json", "--settle", "0.5")
    assert repaired.returncode == 0, repaired.stdout + repaired.stderr
    after = json.loads(repaired.stdout)
    assert after["drift"] == 8 and after["repaired"]["orders"] == 5 and after["after_repair"]["drift"] == 0
    assert "rebuilt into g2" in after["projections"]["daily_sales"]["note"]
    assert json.loads(cli("verify", "--json", "--settle", "0").stdout)["drift"] == 0
    assert_matches_truth(runtime, dynamodb, opensearch)

    # the tombstone written for GHOST still lets the item be created for real afterwards (a new life)
    applier = StreamApplier(runtime, dynamodb, dynamodbstreams)
    item = {**{k: v for k, v in ghost.items() if k != META_FIELD}, "order_id": "GHOST", "version": 1}
    item = json.loads(json.dumps(item), parse_float=Decimal)
    dynamodb.put_item(TableName=table, Item={k: TypeSerializer().serialize(v) for k, v in item.items()})
    applier.drain()
    assert applier.errors == []
    opensearch.indices.refresh(index=index)
    assert opensearch.get(index=index, id="GHOST")["_source"][META_FIELD]["visible"]
    assert verify(runtime, settle_s=0).drift == 0


def test_verify_reports_no_drift_while_the_stream_is_still_flowing(
    runtime: Runtime, dynamodb: Any, dynamodbstreams: Any, opensearch: Any
) -> None:
    table = runtime.settings.source_table
    ids = [order["order_id"] for order in seed_orders(dynamodb, table, 800)]
    assert backfill(runtime, segments=4).status == "finished"
    applier = StreamApplier(runtime, dynamodb, dynamodbstreams)
    live = LiveChanges(dynamodb, table, ids, 100_000, seed=3)
    applier.start()
    live.start()
    wait_until(lambda: sum(live.kinds.values()) >= 10, 120, what="live changes flowing")
    try:
        before = sum(live.kinds.values())
        during = verify(runtime, settle_s=5.0)
        changed = sum(live.kinds.values()) - before
    finally:
        live.halt.set()
        live.join(timeout=60)
        applier.drain()
    assert during.drift == 0, json.dumps(during.to_json())
    assert changed >= 5  # changes really were flowing while verify compared
    assert applier.errors == []
    assert verify(runtime, settle_s=0).drift == 0
    assert_matches_truth(runtime, dynamodb, opensearch)
