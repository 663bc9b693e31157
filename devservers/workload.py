"""A deterministic shop-orders workload for the demo, tests, benchmarks and the soak.

Writers follow the contract of the example domain: every write bumps ``version`` under a condition on
the previous one, a re-created order starts again at version 1.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

STATUSES = ("PENDING", "PAID", "SHIPPED", "CANCELLED")
CURRENCIES = ("EUR", "USD", "GBP")
ADJECTIVES = ("red", "blue", "organic", "wireless", "vintage", "compact", "steel", "bamboo", "linen", "smart")
NOUNS = (
    "kettle",
    "lamp",
    "backpack",
    "keyboard",
    "mug",
    "teapot",
    "headphones",
    "blanket",
    "notebook",
    "bottle",
)
NOTES = ("leave at the door", "gift wrap please", "call before delivery", "fragile", "", "", "")
EPOCH = datetime(2026, 1, 1, tzinfo=UTC)


def make_order(
    rng: random.Random, order_id: str, customers: int = 200, days: int = 30, version: int = 1
) -> dict[str, Any]:
    """One realistic order item as Python values (Decimal numbers), ready for a boto3 resource or serializer."""
    lines = []
    for _ in range(rng.randint(1, 4)):
        price = Decimal(rng.randint(199, 19999)) / 100
        lines.append(
            {
                "sku": f"SKU-{rng.randint(1000, 9999)}",
                "title": f"{rng.choice(ADJECTIVES)} {rng.choice(NOUNS)}",
                "qty": Decimal(rng.randint(1, 3)),
                "price": price,
            }
        )
    total = sum((line["price"] * line["qty"] for line in lines), Decimal(0)).quantize(Decimal("0.01"))
    created = EPOCH + timedelta(days=rng.randrange(days), seconds=rng.randrange(86400))
    order: dict[str, Any] = {
        "order_id": order_id,
        "customer_id": f"C{rng.randrange(customers):04d}",
        "status": rng.choice(STATUSES[:3]),
        "total": total,
        "currency": rng.choice(CURRENCIES),
        "created_at": created.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "items": lines,
        "version": Decimal(version),
    }
    note = rng.choice(NOTES)
    if note:
        order["note"] = note
    return order


def seed_orders(
    client: Any, table: str, count: int, seed: int = 7, customers: int = 200, start: int = 0
) -> list[dict[str, Any]]:
    """Write ``count`` orders with BatchWriteItem (unprocessed items resent) and return them."""
    from boto3.dynamodb.types import TypeSerializer

    serializer = TypeSerializer()
    rng = random.Random(seed)
    orders = [make_order(rng, f"O{start + n:07d}", customers) for n in range(count)]
    for offset in range(0, len(orders), 25):
        requests = [
            {"PutRequest": {"Item": {k: serializer.serialize(v) for k, v in order.items()}}}
            for order in orders[offset : offset + 25]
        ]
        pending: dict[str, Any] = {table: requests}
        while pending:
            pending = client.batch_write_item(RequestItems=pending).get("UnprocessedItems") or {}
    return orders


def change_order(client: Any, table: str, rng: random.Random, order_id: str) -> str:
    """Apply one random live change to an order (update, move, cancel, delete or re-create); say which."""
    from boto3.dynamodb.types import TypeDeserializer, TypeSerializer

    serializer, deserializer = TypeSerializer(), TypeDeserializer()
    current = client.get_item(TableName=table, Key={"order_id": {"S": order_id}}, ConsistentRead=True).get(
        "Item"
    )
    if current is None:
        order = make_order(rng, order_id)
        client.put_item(
            TableName=table,
            Item={k: serializer.serialize(v) for k, v in order.items()},
            ConditionExpression="attribute_not_exists(order_id)",
        )
        return "recreate"
    order = {k: deserializer.deserialize(v) for k, v in current.items()}
    version = order["version"]
    roll = rng.random()
    if roll < 0.12:
        client.delete_item(
            TableName=table,
            Key={"order_id": {"S": order_id}},
            ConditionExpression="#v = :v",
            ExpressionAttributeNames={"#v": "version"},
            ExpressionAttributeValues={":v": serializer.serialize(version)},
        )
        return "delete"
    if roll < 0.3:
        order["status"] = "CANCELLED"
        kind = "cancel"
    elif roll < 0.45:
        order["customer_id"] = f"C{rng.randrange(200):04d}"
        kind = "move"
    elif roll < 0.6:
        order["created_at"] = (EPOCH + timedelta(days=rng.randrange(30))).strftime("%Y-%m-%dT%H:%M:%SZ")
        kind = "redate"
    else:
        order["status"] = rng.choice(STATUSES[:3])
        order["total"] = (order["total"] + Decimal(rng.randint(-500, 500)) / 100).copy_abs()
        kind = "update"
    order["version"] = version + 1
    client.put_item(
        TableName=table,
        Item={k: serializer.serialize(v) for k, v in order.items()},
        ConditionExpression="#v = :v",
        ExpressionAttributeNames={"#v": "version"},
        ExpressionAttributeValues={":v": serializer.serialize(version)},
    )
    return kind
