"""The event-sourced example: order streams in an events table, folded into a search view and summed.

Select it with ``PROJECTOR_PROJECTIONS=projections.order_events`` and ``PROJECTOR_SOURCE_TABLE`` naming
the events table (layout preset ``projector``: ``stream_id`` = ``order-<order_id>``, ``version``,
``type``, ``data``, ``recorded_at``). It is not loaded with the rest of ``projections`` (its events
table is another source than the ``orders`` table).
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from pydantic import BaseModel, ConfigDict, field_validator

from projector import Count, Sum
from projector.events import Event, EventAggregateProjection, EventStreamProjection

PROJECTOR_LOAD_EXPLICITLY = True
CATEGORY = "order"


class _Payload(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


def _iso(value: str) -> str:
    try:
        datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError("must be an ISO-8601 date-time") from None  # the value itself is never echoed
    return value


class OrderPlaced(_Payload):
    order_id: str
    customer_id: str
    placed_at: str

    @field_validator("placed_at")
    @classmethod
    def _placed_at(cls, value: str) -> str:
        return _iso(value)


class ItemAdded(_Payload):
    sku: str
    title: str
    qty: Decimal
    price: Decimal


class ItemRemoved(_Payload):
    sku: str


class OrderPaid(_Payload):
    amount: Decimal
    paid_at: str

    @field_validator("paid_at")
    @classmethod
    def _paid_at(cls, value: str) -> str:
        return _iso(value)


class OrderShipped(_Payload):
    shipped_at: str


class OrderCancelled(_Payload):
    reason: str


def order_id_of(stream_id: str) -> str:
    return stream_id.removeprefix(f"{CATEGORY}-")


def initial(stream_id: str) -> dict[str, Any]:
    return {
        "order_id": order_id_of(stream_id),
        "customer_id": None,
        "status": None,
        "items": [],
        "total": Decimal(0),
        "placed_at": None,
    }


def _total(items: list[dict[str, Any]]) -> Decimal:
    return sum((item["qty"] * item["price"] for item in items), Decimal(0))


def placed(state: dict[str, Any], event: Event[OrderPlaced]) -> dict[str, Any]:
    data = event.data
    return {**state, "customer_id": data.customer_id, "placed_at": data.placed_at, "status": "PLACED"}


def item_added(state: dict[str, Any], event: Event[ItemAdded]) -> dict[str, Any]:
    """A sku added again keeps its place (order of first addition): quantity added, title and price new."""
    data = event.data
    items = list(state["items"])
    for index, item in enumerate(items):
        if item["sku"] == data.sku:
            items[index] = {**item, "title": data.title, "qty": item["qty"] + data.qty, "price": data.price}
            break
    else:
        items.append({"sku": data.sku, "title": data.title, "qty": data.qty, "price": data.price})
    return {**state, "items": items, "total": _total(items)}


def item_removed(state: dict[str, Any], event: Event[ItemRemoved]) -> dict[str, Any]:
    items = [item for item in state["items"] if item["sku"] != event.data.sku]
    return {**state, "items": items, "total": _total(items)}


def status(value: str) -> Any:
    def handler(state: dict[str, Any], event: Event) -> dict[str, Any]:
        return {**state, "status": value}

    return handler


order_views = EventStreamProjection(
    name="order_views",
    key_attributes=("order_id",),  # the document field unique per stream (stable search paging)
    category=CATEGORY,
    document_id=order_id_of,
    version_field="version",
    initial=initial,
    handlers={
        OrderPlaced: placed,
        ItemAdded: item_added,
        ItemRemoved: item_removed,
        OrderPaid: status("PAID"),
        OrderShipped: status("SHIPPED"),
        OrderCancelled: status("CANCELLED"),
    },
    text_fields=("items.title",),
    mappings={
        "properties": {
            "order_id": {"type": "keyword"},
            "customer_id": {"type": "keyword"},
            "status": {"type": "keyword"},
            "items": {
                "properties": {
                    "sku": {"type": "keyword"},
                    "title": {"type": "text"},
                    "qty": {"type": "long"},
                    "price": {"type": "double"},
                }
            },
            "total": {"type": "double"},
            "placed_at": {"type": "date", "format": "strict_date_optional_time"},
            "version": {"type": "long"},
        }
    },
)

paid_by_day = EventAggregateProjection(
    name="paid_by_day",
    category=CATEGORY,
    events=(OrderPaid,),
    group_name="day",
    measures={"order_count": Count(), "revenue": Sum(attribute="amount", places=2)},
    groups=lambda event: [event.data.paid_at[:10]],
)
