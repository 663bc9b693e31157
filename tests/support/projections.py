"""Projections used only by tests: a nested-object mapping the shop-orders example does not have."""

from __future__ import annotations

from projector import AggregateProjection, Count, DocumentProjection, Sum

CARTS = DocumentProjection(
    name="carts",
    key_attributes=("cart_id",),
    text_fields=("lines.title", "comment"),
    document=lambda item: item,
    mappings={
        "properties": {
            "cart_id": {"type": "keyword"},
            "comment": {"type": "text"},
            "lines": {
                "type": "nested",
                "properties": {
                    "sku": {"type": "keyword"},
                    "qty": {"type": "long"},
                    "title": {"type": "text"},
                },
            },
        }
    },
)

# An aggregate over an order's ``tags`` list: an item in several groups at once (old and new).
TAGS = AggregateProjection(
    name="tags",
    key_attributes=("order_id",),
    group_name="tag",
    measures={"items": Count(), "amount": Sum(attribute="total", places=2)},
    groups=lambda item: list(item["tags"]),
)
