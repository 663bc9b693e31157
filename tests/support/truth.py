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
