"""The shop-orders example: a search index of orders and two aggregates over them."""

from __future__ import annotations

from typing import Any

from projector import AggregateProjection, AttributeVersion, Count, DocumentProjection, Sum

ORDER_FIELDS = (
    "order_id",
    "customer_id",
    "status",
    "total",
    "currency",
    "created_at",
    "items",
    "note",
    "version",
)
COUNTED_AS_SALES = frozenset({"PAID", "SHIPPED"})


def order_document(order: dict[str, Any]) -> dict[str, Any]:
    return {name: order[name] for name in ORDER_FIELDS if name in order}


orders = DocumentProjection(
    name="orders",
    key_attributes=("order_id",),
    version=AttributeVersion(attribute="version"),
    text_fields=("items.title", "note"),
    mappings={
        "properties": {
            "order_id": {"type": "keyword"},
            "customer_id": {"type": "keyword"},
            "status": {"type": "keyword"},
            "total": {"type": "double"},
            "currency": {"type": "keyword"},
            "created_at": {"type": "date", "format": "strict_date_optional_time"},
            "items": {
                "properties": {
                    "sku": {"type": "keyword"},
                    "title": {"type": "text"},
                    "qty": {"type": "long"},
                    "price": {"type": "double"},
                }
            },
            "note": {"type": "text"},
            "version": {"type": "long"},
        }
    },
    document=order_document,
)

customer_totals = AggregateProjection(
    name="customer_totals",
    key_attributes=("order_id",),
    group_name="customer_id",
    measures={"order_count": Count(), "revenue": Sum(attribute="total", places=2)},
    groups=lambda order: [order["customer_id"]] if order.get("status") != "CANCELLED" else [],
)

daily_sales = AggregateProjection(
    name="daily_sales",
    key_attributes=("order_id",),
    group_name="day",
    measures={"order_count": Count(), "revenue": Sum(attribute="total", places=2)},
    groups=lambda order: [order["created_at"][:10]] if order.get("status") in COUNTED_AS_SALES else [],
)
