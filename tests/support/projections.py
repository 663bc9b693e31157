"""Projections used only by tests: a nested-object mapping the shop-orders example does not have."""

from __future__ import annotations

from projector import DocumentProjection

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
