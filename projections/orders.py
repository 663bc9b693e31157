"""The shop-orders example: a search index of orders and three aggregates over them."""

from __future__ import annotations

import decimal
from decimal import Decimal
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
# qty·price without rounding: a product too long for this context raises (that order is poison), never rounds.
EXACT = decimal.Context(prec=80, traps=[decimal.Inexact, decimal.Rounded, decimal.InvalidOperation])


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


def line_sales(order: dict[str, Any]) -> list[tuple[str, dict[str, Decimal]]]:
    """Each line's units and revenue for its own SKU; the engine sums lines of the same SKU."""
    if order.get("status") not in COUNTED_AS_SALES:
        return []
    return [
        (line["sku"], {"units": line["qty"], "revenue": EXACT.multiply(line["qty"], line["price"])})
        for line in order.get("items", [])
    ]


product_sales = AggregateProjection(
    name="product_sales",
    key_attributes=("order_id",),
    group_name="sku",
    measures={"units": Sum(integer=True), "revenue": Sum(places=2)},
    group_values=line_sales,
)
