"""Plausible order events for the event-sourced example (the demo and the tests append them)."""

from __future__ import annotations

import random
from decimal import Decimal

from projector.events import NewEvent


def next_events(rng: random.Random, version: int, order_id: str, count: int) -> list[NewEvent]:
    """Plausible order events following ``version`` (the first one places the order)."""
    events: list[NewEvent] = []
    for offset in range(count):
        if version + offset == 0:
            events.append(
                NewEvent(
                    "OrderPlaced",
                    {
                        "order_id": order_id,
                        "customer_id": f"C{rng.randrange(5)}",
                        "placed_at": "2026-01-05T10:00:00Z",
                    },
                )
            )
            continue
        kind = rng.choice(["add", "add", "add", "remove", "paid", "shipped", "cancelled"])
        sku = f"S{rng.randrange(4)}"
        if kind == "add":
            price = Decimal(rng.randrange(1, 5000)) / 100
            title = rng.choice(["wireless kettle", "blue mug", "steel pan", "tea towel"])
            events.append(
                NewEvent(
                    "ItemAdded", {"sku": sku, "title": title, "qty": rng.randrange(1, 4), "price": price}
                )
            )
        elif kind == "remove":
            events.append(NewEvent("ItemRemoved", {"sku": sku}))
        elif kind == "paid":
            amount = Decimal(rng.randrange(100, 90000)) / 100
            day = rng.randrange(1, 4)
            events.append(NewEvent("OrderPaid", {"amount": amount, "paid_at": f"2026-01-0{day}T12:00:00Z"}))
        elif kind == "shipped":
            events.append(NewEvent("OrderShipped", {"shipped_at": "2026-01-06T00:00:00Z"}))
        else:
            events.append(NewEvent("OrderCancelled", {"reason": "changed mind"}))
    return events
