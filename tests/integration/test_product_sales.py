"""`product_sales` (per-SKU values from an order's lines) through the Lambda handler on the real servers.

Orders with several lines (two of one SKU), status moves PAID→CANCELLED→PAID, SKU changes between
versions, deletes and re-creations are written to the source table; their stream records are delivered
with replays, duplicates and reordering. Every SKU ever written is then compared with a recomputation
from the source table that shares no code with the projection, and `projector verify` finds no drift.
"""

from __future__ import annotations

import json
import random
from decimal import Decimal
from typing import Any

import pytest

from devservers.workload import make_order
from projector.handler import lambda_handler, runtime
from projector.sinks.aggregates import read_aggregate
from tests.integration.test_backfill import cli
from tests.support.handler import LambdaContext
from tests.support.orders_table import delete_order, put_order, update_order
from tests.support.streams import capture_records, event
from tests.support.truth import product_sales_drift, product_sales_truth, scan_items

pytestmark = pytest.mark.integration


def line(sku: str, qty: int, price: str) -> dict[str, Any]:
    return {"sku": sku, "title": f"item {sku}", "qty": Decimal(qty), "price": Decimal(price)}


def order(order_id: str, status: str, *lines: dict[str, Any]) -> dict[str, Any]:
    return {
        "order_id": order_id,
        "customer_id": "C0001",
        "status": status,
        "total": sum((item["qty"] * item["price"] for item in lines), Decimal(0)),
        "currency": "EUR",
        "created_at": "2026-01-02T10:00:00Z",
        "items": list(lines),
        "version": Decimal(1),
    }


def assert_rows_equal_source(dynamodb: Any, table: str, skus: set[str]) -> dict[str, tuple[int, Decimal]]:
    expected = product_sales_truth(scan_items(dynamodb, table))
    engine = runtime()
    projection = engine.registry.aggregate("product_sales")
    for sku in sorted(skus | expected.keys()):
        units, revenue = expected.get(sku, (0, Decimal(0)))
        row = read_aggregate(engine.dynamodb, engine.settings, projection, sku)
        assert row == {"name": "product_sales", "key": sku, "units": units, "revenue": f"{revenue:.2f}"}, sku
    return expected


def write_history(dynamodb: Any, table: str) -> set[str]:
    """Write the orders and their moves; answer every SKU any version named."""
    two_of_a = order("P1", "PAID", line("A", 2, "10.25"), line("B", 1, "99.99"), line("A", 1, "3.00"))
    put_order(dynamodb, table, two_of_a)
    moving = order("P2", "PAID", line("B", 3, "1.10"), line("C", 1, "5.00"))
    put_order(dynamodb, table, moving)
    for status in ("CANCELLED", "PAID"):
        moving = update_order(dynamodb, table, moving, status=status)
    renamed = order("P3", "PAID", line("D", 4, "2.50"))
    put_order(dynamodb, table, renamed)
    renamed = update_order(dynamodb, table, renamed, items=[line("E", 4, "2.50"), line("A", 1, "0.05")])
    renamed = update_order(dynamodb, table, renamed, status="SHIPPED")
    deleted = order("P4", "SHIPPED", line("F", 7, "1.00"))
    put_order(dynamodb, table, deleted)
    delete_order(dynamodb, table, "P4")
    reborn = order("P5", "PAID", line("G", 1, "12.00"))
    put_order(dynamodb, table, reborn)
    delete_order(dynamodb, table, "P5")
    reborn = order("P5", "PENDING", line("G", 2, "12.00"), line("A", 5, "1.00"))
    put_order(dynamodb, table, reborn)
    update_order(dynamodb, table, reborn, status="PAID")
    put_order(dynamodb, table, order("P6", "PENDING", line("A", 9, "9.00")))  # never counted
    skus = set("ABCDEFG")
    rng = random.Random(15)
    for n in range(12):
        placed = make_order(rng, f"R{n:03d}")
        put_order(dynamodb, table, placed)
        skus |= {entry["sku"] for entry in placed["items"]}
        if n % 3 == 0:
            update_order(dynamodb, table, placed, status=rng.choice(("PAID", "CANCELLED", "SHIPPED")))
        elif n % 3 == 1:
            delete_order(dynamodb, table, placed["order_id"])
    return skus


def test_product_sales_is_exact_under_replays_duplicates_reordering_and_group_moves(
    pipeline: Any, dynamodb: Any, dynamodbstreams: Any
) -> None:
    table = pipeline.source_table
    skus = write_history(dynamodb, table)
    records = capture_records(dynamodb, dynamodbstreams, table)
    assert len(records) > 30

    def handle(batch: list[dict[str, Any]]) -> None:
        assert lambda_handler(event(batch), LambdaContext()) == {"batchItemFailures": []}

    handle(records[len(records) // 2 :])  # the later half first: older changes arrive after newer ones
    shuffled = records[:]
    random.Random(7).shuffle(shuffled)
    rounds = [
        records,
        [record for record in records for _ in range(2)],
        list(reversed(records)),
        shuffled,
    ]
    for batch in rounds:
        for start in range(0, len(batch), 9):
            handle(batch[start : start + 9])
        assert product_sales_drift(dynamodb, pipeline.aggregates_table, scan_items(dynamodb, table)) == []
    expected = assert_rows_equal_source(dynamodb, table, skus)  # through the reader: ints and "0.00"s

    # the hand-written orders' values, spelled out (two lines of A in P1 sum into A; P6 is PENDING)
    assert expected["A"] == (2 + 1 + 1 + 5, Decimal("20.50") + Decimal("3.00") + Decimal("0.05") + 5)
    assert expected["B"][0] == 1 + 3 and expected["E"] == (4, Decimal("10.00"))
    assert not {"D", "F"} & expected.keys()

    found = cli("verify", "--json", "--settle", "0")
    assert found.returncode == 0, found.stdout + found.stderr
    report = json.loads(found.stdout)
    assert report["drift"] == 0 and "product_sales" in report["projections"]

    shown = cli("aggregate", "product_sales", "A", "--json")
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout) == {"name": "product_sales", "key": "A", "units": 9, "revenue": "28.55"}
    gone = json.loads(cli("aggregate", "product_sales", "D", "--json").stdout)
    assert gone == {"name": "product_sales", "key": "D", "units": 0, "revenue": "0.00"}

    # a fractional quantity cannot be a whole number of units: that change alone is dead-lettered whole
    # for product_sales (the other projections apply it), and a fixed version applies
    bad = order("P7", "PAID", line("A", 1, "2.00"), line("H", 1, "1.00"))
    bad["items"][0]["qty"] = Decimal("1.5")
    put_order(dynamodb, table, bad)
    seen = len(records)
    records = capture_records(dynamodb, dynamodbstreams, table)
    handle(records[seen:])
    letters = [letter for letter in runtime().dead_letters.list() if letter.reason == "poison"]
    assert [letter.projection for letter in letters] == ["product_sales"]
    assert letters[0].record == records[seen] and "'units' must be a whole number" in letters[0].error
    live = scan_items(dynamodb, table)
    assert (
        product_sales_drift(dynamodb, pipeline.aggregates_table, {k: v for k, v in live.items() if k != "P7"})
        == []
    )
    assert json.loads(cli("verify", "--json", "--settle", "0").stdout)["drift"] == 0  # poison skipped alike
    update_order(dynamodb, table, bad, items=[line("A", 2, "2.00"), line("H", 1, "1.00")])
    handle(capture_records(dynamodb, dynamodbstreams, table)[seen + 1 :])
    assert product_sales_drift(dynamodb, pipeline.aggregates_table, scan_items(dynamodb, table)) == []

    # verify recomputes the same per-SKU values: a row moved behind the stream's back is found
    dynamodb.update_item(
        TableName=pipeline.aggregates_table,
        Key={"pk": {"S": "product_sales#group#B"}, "sk": {"S": "g1"}},
        UpdateExpression="ADD units :one",
        ExpressionAttributeValues={":one": {"N": "1"}},
    )
    drifted = cli("verify", "--json", "--settle", "0")
    assert drifted.returncode == 1
    assert json.loads(drifted.stdout)["projections"]["product_sales"]["mismatch"] == 1
