"""The source table as truth, and the search projection as it is, for end-state comparisons."""

from __future__ import annotations

from typing import Any

from boto3.dynamodb.types import TypeDeserializer

_deserializer = TypeDeserializer()


def scan_items(dynamodb: Any, table: str) -> dict[str, dict[str, Any]]:
    """Every live item of ``table`` by order_id, as Python values."""
    items: dict[str, dict[str, Any]] = {}
    for page in dynamodb.get_paginator("scan").paginate(TableName=table, ConsistentRead=True):
        for raw in page["Items"]:
            item = {key: _deserializer.deserialize(value) for key, value in raw.items()}
            items[str(item["order_id"])] = item
    return items


def visible_documents(opensearch: Any, alias: str) -> dict[str, dict[str, Any]]:
    """Every document a reader of ``alias`` can see, by _id."""
    opensearch.indices.refresh(index=alias)
    response = opensearch.search(index=alias, body={"query": {"match_all": {}}, "size": 10000})
    return {hit["_id"]: hit["_source"] for hit in response["hits"]["hits"]}


def same_document(expected: dict[str, Any], actual: dict[str, Any]) -> bool:
    """Equal field by field, numbers compared as decimals (OpenSearch returns JSON numbers)."""
    from decimal import Decimal

    def norm(value: Any) -> Any:
        if isinstance(value, dict):
            return {
                k: norm(v) for k, v in value.items() if not k.startswith(("_projector", "projector_meta"))
            }
        if isinstance(value, list):
            return [norm(v) for v in value]
        if isinstance(value, bool) or value is None or isinstance(value, str):
            return value
        return Decimal(str(value))

    return norm(expected) == norm(actual)


def product_sales_truth(items: dict[str, dict[str, Any]]) -> dict[str, tuple[int, Any]]:
    """``(units, revenue)`` per SKU over the lines of live PAID/SHIPPED orders (no projection code)."""
    from decimal import Decimal

    totals: dict[str, tuple[int, Decimal]] = {}
    for item in items.values():
        if item.get("status") in ("PAID", "SHIPPED"):
            for line in item.get("items", []):
                units, revenue = totals.get(line["sku"], (0, Decimal(0)))
                totals[line["sku"]] = (units + int(line["qty"]), revenue + line["qty"] * line["price"])
    return totals


def product_sales_drift(dynamodb: Any, aggregates_table: str, items: dict[str, dict[str, Any]]) -> list[str]:
    """The SKUs whose stored row (read generation, one consistent Scan) differs from the truth; [] if none.

    A row that should be zero may be absent or hold zeros; a row that no live line backs must be zero.
    """
    from decimal import Decimal

    meta = dynamodb.get_item(
        TableName=aggregates_table,
        Key={"pk": {"S": "product_sales#meta"}, "sk": {"S": "meta"}},
        ConsistentRead=True,
    ).get("Item")
    generation = f"g{meta['read_generation']['N']}" if meta else "g1"
    rows: dict[str, tuple[int, Decimal]] = {}
    pages = dynamodb.get_paginator("scan").paginate(
        TableName=aggregates_table,
        ConsistentRead=True,
        FilterExpression="begins_with(pk, :group) AND sk = :generation",
        ExpressionAttributeValues={":group": {"S": "product_sales#group"}, ":generation": {"S": generation}},
    )
    for page in pages:
        for row in page["Items"]:
            units = Decimal(row["units"]["N"]) if "units" in row else Decimal(0)
            revenue = Decimal(row["revenue"]["N"]) if "revenue" in row else Decimal(0)
            rows[row["group-key"]["S"]] = (int(units), revenue)
    truth = product_sales_truth(items)
    zero = (0, Decimal(0))
    return sorted(sku for sku in truth.keys() | rows.keys() if truth.get(sku, zero) != rows.get(sku, zero))
