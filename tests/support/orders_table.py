"""Write orders to the real source table on the moto server, as the domain's writers do."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from boto3.dynamodb.types import TypeSerializer

_serializer = TypeSerializer()


def put_order(dynamodb: Any, table: str, order: dict[str, Any]) -> None:
    dynamodb.put_item(TableName=table, Item={k: _serializer.serialize(v) for k, v in order.items()})


def update_order(dynamodb: Any, table: str, order: dict[str, Any], **changes: Any) -> dict[str, Any]:
    """Write a new version of ``order`` (version + 1) under a condition on the current version."""
    updated = {**order, **changes, "version": order["version"] + 1}
    dynamodb.put_item(
        TableName=table,
        Item={k: _serializer.serialize(v) for k, v in updated.items()},
        ConditionExpression="#v = :v",
        ExpressionAttributeNames={"#v": "version"},
        ExpressionAttributeValues={":v": _serializer.serialize(order["version"])},
    )
    return updated


def delete_order(dynamodb: Any, table: str, order_id: str) -> None:
    dynamodb.delete_item(TableName=table, Key={"order_id": {"S": order_id}})


def expected_aggregates(items: dict[str, dict[str, Any]], projection: Any) -> dict[str, dict[str, Decimal]]:
    """Recompute an aggregate projection from the live items: the truth it must equal."""
    totals: dict[str, dict[str, Decimal]] = {}
    for item in items.values():
        for group, measures in projection.contributions(item).items():
            row = totals.setdefault(group, dict.fromkeys(projection.measures, Decimal(0)))
            for name, value in measures.items():
                row[name] += value
    return totals
