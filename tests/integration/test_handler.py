"""The Lambda handler end to end on the real servers, fed with records captured from the moto stream.

Each test drives a delivery pattern on purpose (replays, duplicates, late and reordered records, poison,
an unreachable OpenSearch) and then checks the projections against the source table.
"""

from __future__ import annotations

import random
import time
from decimal import Decimal
from typing import Any

import pytest

from devservers.workload import make_order
from projections.orders import customer_totals, daily_sales
from projector.handler import reset_runtime, runtime
from projector.sinks.aggregates import read_aggregate
from projector.sinks.opensearch.indexes import read_index
from tests.support.handler import handle
from tests.support.orders_table import delete_order, expected_aggregates, put_order, update_order
from tests.support.streams import capture_records
from tests.support.truth import product_sales_drift, same_document, scan_items, visible_documents

pytestmark = pytest.mark.integration


def assert_projections_equal_source(dynamodb: Any, opensearch: Any, env: Any) -> None:
    items = scan_items(dynamodb, env.source_table)
    documents = visible_documents(opensearch, env.index_prefix + "orders")
    assert set(documents) == set(items)
    for order_id, item in items.items():
        assert same_document(item, documents[order_id]), order_id
    engine = runtime()
    for projection in (customer_totals, daily_sales):
        truth = expected_aggregates(items, projection)
        for group, measures in truth.items():
            row = read_aggregate(engine.dynamodb, engine.settings, projection, group)
            assert Decimal(row["revenue"]) == measures["revenue"], (projection.name, group)
            assert row["order_count"] == measures["order_count"], (projection.name, group)
    assert product_sales_drift(dynamodb, env.aggregates_table, items) == []


def seed(dynamodb: Any, table: str, count: int, seed_value: int = 1) -> list[dict[str, Any]]:
    rng = random.Random(seed_value)
    orders = [make_order(rng, f"O{n:05d}") for n in range(count)]
    for order in orders:
        put_order(dynamodb, table, order)
    return orders


def test_batch_projects_documents_and_aggregates(
    pipeline: Any, dynamodb: Any, dynamodbstreams: Any, opensearch: Any
) -> None:
    orders = seed(dynamodb, pipeline.source_table, 40)
    update_order(dynamodb, pipeline.source_table, orders[0], status="CANCELLED")
    update_order(dynamodb, pipeline.source_table, orders[1], customer_id="C9999")
    delete_order(dynamodb, pipeline.source_table, orders[2]["order_id"])
    records = capture_records(dynamodb, dynamodbstreams, pipeline.source_table)
    assert handle(records) == {"batchItemFailures": []}
    assert_projections_equal_source(dynamodb, opensearch, pipeline)


def test_replays_and_duplicates_change_nothing(
    pipeline: Any, dynamodb: Any, dynamodbstreams: Any, opensearch: Any
) -> None:
    orders = seed(dynamodb, pipeline.source_table, 20, seed_value=2)
    for order in orders[:10]:
        update_order(dynamodb, pipeline.source_table, order, status="SHIPPED")
    records = capture_records(dynamodb, dynamodbstreams, pipeline.source_table)
    assert handle(records) == {"batchItemFailures": []}
    alias = pipeline.index_prefix + "orders"
    before = visible_documents(opensearch, alias)
    versions = {
        hit["_id"]: hit["_version"]
        for hit in opensearch.search(index=alias, body={"size": 100, "version": True})["hits"]["hits"]
    }
    doubled = [record for record in records for _ in range(2)]
    for batch in (records, doubled, records[5:], list(reversed(records))):
        assert handle(batch) == {"batchItemFailures": []}
    assert visible_documents(opensearch, alias) == before
    assert {
        hit["_id"]: hit["_version"]
        for hit in opensearch.search(index=alias, body={"size": 100, "version": True})["hits"]["hits"]
    } == versions
    assert_projections_equal_source(dynamodb, opensearch, pipeline)


def test_older_change_after_newer_one_changes_nothing(
    pipeline: Any, dynamodb: Any, dynamodbstreams: Any, opensearch: Any
) -> None:
    order = seed(dynamodb, pipeline.source_table, 1, seed_value=3)[0]
    for status in ("PAID", "SHIPPED", "CANCELLED"):
        order = update_order(dynamodb, pipeline.source_table, order, status=status)
    records = capture_records(dynamodb, dynamodbstreams, pipeline.source_table)
    assert handle(records[-1:]) == {"batchItemFailures": []}
    for record in reversed(records[:-1]):
        assert handle([record]) == {"batchItemFailures": []}
    assert_projections_equal_source(dynamodb, opensearch, pipeline)
    assert (
        visible_documents(opensearch, pipeline.index_prefix + "orders")[order["order_id"]]["status"]
        == "CANCELLED"
    )


def test_delete_wins_after_gc_deletes_and_a_restart(
    pipeline: Any, dynamodb: Any, dynamodbstreams: Any, opensearch: Any
) -> None:
    from devservers.opensearch import OpenSearch as OpenSearchServer

    orders = seed(dynamodb, pipeline.source_table, 3, seed_value=4)
    physical = read_index(opensearch, runtime().registry.document("orders"), pipeline.index_prefix)
    opensearch.indices.put_settings(index=physical, body={"index": {"gc_deletes": "1s"}})
    update_order(dynamodb, pipeline.source_table, orders[0], status="PAID")
    delete_order(dynamodb, pipeline.source_table, orders[0]["order_id"])
    records = capture_records(dynamodb, dynamodbstreams, pipeline.source_table)
    assert handle(records) == {"batchItemFailures": []}
    time.sleep(2.5)
    opensearch.indices.refresh(index=physical)
    stale = [
        r
        for r in records
        if r["eventName"] != "REMOVE" and r["dynamodb"]["Keys"]["order_id"]["S"] == orders[0]["order_id"]
    ]
    assert handle(stale) == {"batchItemFailures": []}
    assert orders[0]["order_id"] not in visible_documents(opensearch, pipeline.index_prefix + "orders")

    server = OpenSearchServer()
    if server.owned_pid() is None:
        pytest.skip("OpenSearch was not started by scripts/services; cannot restart it here")
    server.stop()
    server.start()
    reset_runtime()
    assert handle(stale) == {"batchItemFailures": []}
    alias = pipeline.index_prefix + "orders"
    assert orders[0]["order_id"] not in visible_documents(opensearch, alias)
    assert opensearch.count(index=alias)["count"] == 2
    assert_projections_equal_source(dynamodb, opensearch, pipeline)


def test_recreated_key_is_a_new_life(
    pipeline: Any, dynamodb: Any, dynamodbstreams: Any, opensearch: Any
) -> None:
    order = seed(dynamodb, pipeline.source_table, 1, seed_value=5)[0]
    order = update_order(dynamodb, pipeline.source_table, order, status="PAID")
    order = update_order(dynamodb, pipeline.source_table, order, status="SHIPPED")
    delete_order(dynamodb, pipeline.source_table, order["order_id"])
    old_life = capture_records(dynamodb, dynamodbstreams, pipeline.source_table)
    time.sleep(1.1)
    reborn = {**make_order(random.Random(99), order["order_id"]), "note": "second life"}
    put_order(dynamodb, pipeline.source_table, reborn)
    new_life = capture_records(
        dynamodb, dynamodbstreams, pipeline.source_table, after=old_life[-1]["dynamodb"]["SequenceNumber"]
    )
    assert handle(old_life + new_life) == {"batchItemFailures": []}
    assert handle(old_life) == {"batchItemFailures": []}
    assert handle(old_life[:2]) == {"batchItemFailures": []}
    documents = visible_documents(opensearch, pipeline.index_prefix + "orders")
    assert documents[order["order_id"]]["note"] == "second life"
    assert_projections_equal_source(dynamodb, opensearch, pipeline)


def test_poison_records_are_dead_lettered_whole_and_the_rest_applied(
    pipeline: Any, dynamodb: Any, dynamodbstreams: Any, opensearch: Any
) -> None:
    seed(dynamodb, pipeline.source_table, 5, seed_value=6)
    records = capture_records(dynamodb, dynamodbstreams, pipeline.source_table)
    malformed = {**records[1], "dynamodb": {**records[1]["dynamodb"], "NewImage": {"total": {"X": "1"}}}}
    unmapped = {
        **records[2],
        "dynamodb": {
            **records[2]["dynamodb"],
            "NewImage": {
                **records[2]["dynamodb"]["NewImage"],
                "items": {"L": [{"M": {"sku": {"S": "A"}, "colour": {"S": "red"}}}]},
            },
        },
    }
    batch = [records[0], malformed, unmapped, records[3], records[4]]
    assert handle(batch) == {"batchItemFailures": []}
    letters = list(runtime().dead_letters.list())
    by_reason = {letter.reason: letter for letter in letters}
    assert by_reason["malformed"].record == malformed
    assert "dynamodb.NewImage.total" in by_reason["malformed"].error
    poison = {letter.projection: letter for letter in letters if letter.reason == "poison"}
    # the line without qty/price is also poison for product_sales when the order counts as a sale
    counted = unmapped["dynamodb"]["NewImage"]["status"]["S"] in ("PAID", "SHIPPED")
    assert set(poison) == {"orders", *(["product_sales"] if counted else [])}
    assert all(letter.record == unmapped for letter in poison.values())
    documents = visible_documents(opensearch, pipeline.index_prefix + "orders")
    for record in (records[0], records[3], records[4]):
        assert record["dynamodb"]["Keys"]["order_id"]["S"] in documents


def test_unreachable_opensearch_reports_first_record_within_deadline_then_converges(
    pipeline: Any, dynamodb: Any, dynamodbstreams: Any, opensearch: Any, monkeypatch: Any
) -> None:
    from devservers.toxiproxy import start_toxiproxy

    toxiproxy = start_toxiproxy()
    name = f"os-{pipeline.index_prefix.rstrip('-')}"
    proxy = toxiproxy.create_proxy(name, "127.0.0.1:0", "127.0.0.1:9200")
    try:
        monkeypatch.setenv("PROJECTOR_OPENSEARCH_URL", f"http://{proxy['listen']}")
        monkeypatch.setenv("PROJECTOR_OPENSEARCH_TIMEOUT_S", "1")
        monkeypatch.setenv("PROJECTOR_DEADLINE_MARGIN_MS", "500")
        reset_runtime()
        orders = seed(dynamodb, pipeline.source_table, 10, seed_value=7)
        for order in orders[:5]:
            update_order(dynamodb, pipeline.source_table, order, status="PAID")
        records = capture_records(dynamodb, dynamodbstreams, pipeline.source_table)
        toxiproxy.set_enabled(name, False)
        started = time.monotonic()
        response = handle(records, seconds=6)
        assert time.monotonic() - started < 6
        assert response == {
            "batchItemFailures": [{"itemIdentifier": records[0]["dynamodb"]["SequenceNumber"]}]
        }
        toxiproxy.set_enabled(name, True)
        assert handle(records) == {"batchItemFailures": []}
        assert_projections_equal_source(dynamodb, opensearch, pipeline)
    finally:
        toxiproxy.delete_proxy(name)
