"""A search projection that keeps TTL-expired orders (``keep_expired=True``), for the exactness tests."""

from __future__ import annotations

from projections.orders import order_document, orders
from projector import DocumentProjection

kept_orders = DocumentProjection(
    name="kept_orders",
    key_attributes=("order_id",),
    keep_expired=True,
    mappings=orders.mappings,
    text_fields=orders.text_fields,
    document=order_document,
)
