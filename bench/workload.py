"""Lambda-shaped stream records of the shop-orders workload, deterministic for a seed.

Orders come from ``devservers.workload.make_order``; each lives through an INSERT, a few MODIFYs (status,
customer, date or total moves, version + 1 each) and sometimes a REMOVE or a re-creation. Changes of
all orders are interleaved on one timeline, so an order's changes fall into one batch or spread over
several, as on a real stream. Images are serialised with boto3's ``TypeSerializer`` and round-tripped
through JSON: exactly the shape ``tests/support/streams.py`` produces from moto's GetRecords.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal
from typing import Any

from devservers.workload import EPOCH, STATUSES, make_order

REGION = "us-east-1"
STREAM_ARN = f"arn:aws:dynamodb:{REGION}:123456789012:table/orders/stream/2026-01-01T00:00:00.000"
START_SECONDS = 1_767_225_600  # 2026-01-01T00:00:00Z
RECORDS_PER_SECOND = 200
SEQUENCE_BASE = 4_421_584_500_000_000_017_450_439_091


@dataclass(slots=True)
class Workload:
    """The records, and the item each live order ends as (what a bulk load of the result would index)."""

    records: list[dict[str, Any]]
    final: dict[str, dict[str, Any] | None] = field(default_factory=dict)

    @property
    def live(self) -> dict[str, dict[str, Any]]:
        return {order_id: item for order_id, item in self.final.items() if item is not None}

    def batches(self, size: int) -> list[list[dict[str, Any]]]:
        return [self.records[start : start + size] for start in range(0, len(self.records), size)]


def _changed(rng: random.Random, order: dict[str, Any]) -> dict[str, Any]:
    """The order after one application write (mirrors devservers.workload.change_order, without I/O)."""
    order = dict(order)
    roll = rng.random()
    if roll < 0.2:
        order["status"] = "CANCELLED"
    elif roll < 0.35:
        order["customer_id"] = f"C{rng.randrange(200):04d}"
    elif roll < 0.5:
        order["created_at"] = (EPOCH + timedelta(days=rng.randrange(30))).strftime("%Y-%m-%dT%H:%M:%SZ")
    else:
        order["status"] = rng.choice(STATUSES[:3])
        order["total"] = (order["total"] + Decimal(rng.randint(-500, 500)) / 100).copy_abs()
    order["version"] = order["version"] + 1
    return order


def _lifecycle(
    rng: random.Random, order_id: str
) -> list[tuple[str, dict[str, Any] | None, dict[str, Any] | None]]:
    """(eventName, new image, old image) of one order's life: about four changes on average."""
    order = make_order(rng, order_id)
    events: list[tuple[str, dict[str, Any] | None, dict[str, Any] | None]] = [("INSERT", order, None)]
    for _ in range(rng.choice((1, 2, 2, 3, 3, 4))):
        new = _changed(rng, order)
        events.append(("MODIFY", new, order))
        order = new
    if rng.random() < 0.12:
        events.append(("REMOVE", None, order))
        if rng.random() < 0.3:  # re-created later: a new life starting again at version 1
            events.append(("INSERT", make_order(rng, order_id), None))
    return events


def make_workload(records: int, seed: int = 11, spread: int = 1500) -> Workload:
    """``records`` change records; an order's changes are ``spread`` records apart on average."""
    from boto3.dynamodb.types import TypeSerializer

    serialize = TypeSerializer().serialize
    # An image is the new image of one record and the old image of the next: serialise it once (by
    # identity: every image lives until the end). Its size is an estimate (SizeBytes is informative).
    serialised: dict[int, tuple[dict[str, Any], int]] = {}

    def dynamodb_json(item: dict[str, Any]) -> tuple[dict[str, Any], int]:
        found = serialised.get(id(item))
        if found is None:
            image = {key: serialize(value) for key, value in item.items()}
            found = serialised[id(item)] = (image, 40 * len(image) + 60 * len(item.get("items", ())))
        return found

    rng = random.Random(seed)
    timeline: list[tuple[float, int, int, tuple[str, Any, Any]]] = []
    orders = 0
    while len(timeline) < records * 1.05 + 50:
        order_id = f"O{orders:07d}"
        at = rng.uniform(0, records)
        for step, event in enumerate(_lifecycle(rng, order_id)):
            timeline.append((at, orders, step, event))
            at += rng.expovariate(1 / spread)
        orders += 1
    timeline.sort(key=lambda entry: (entry[0], entry[1], entry[2]))
    # An order's steps are timed in increasing order, so sorting keeps them in stream order.
    out: list[dict[str, Any]] = []
    final: dict[str, dict[str, Any] | None] = {}
    for index, (_, number, _, (name, new, old)) in enumerate(timeline[:records]):
        order_id = f"O{number:07d}"
        image = new if new is not None else old
        data: dict[str, Any] = {
            "ApproximateCreationDateTime": START_SECONDS + index // RECORDS_PER_SECOND,
            "Keys": {"order_id": serialize(order_id)},
            "SequenceNumber": str(SEQUENCE_BASE + index * 100),
            "StreamViewType": "NEW_AND_OLD_IMAGES",
        }
        size = len(order_id) + 20
        if new is not None:
            data["NewImage"], length = dynamodb_json(new)
            size += length
        if old is not None:
            data["OldImage"], length = dynamodb_json(old)
            size += length
        data["SizeBytes"] = size
        assert image is not None
        out.append(
            {
                "eventID": f"{rng.getrandbits(128):032x}",
                "eventName": name,
                "eventVersion": "1.1",
                "eventSource": "aws:dynamodb",
                "awsRegion": REGION,
                "eventSourceARN": STREAM_ARN,
                "dynamodb": data,
            }
        )
        final[order_id] = new
    return Workload(records=json.loads(json.dumps(out)), final=final)
