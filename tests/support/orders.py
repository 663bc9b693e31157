"""Shop orders as a source table holds them, emitting their stream changes in order, and a delivery
grouped per item as the pipeline groups it: the stand-ins the store and sink tests feed their stores with."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import replace
from decimal import Decimal
from typing import Any

from projector.changes.batch import ItemChanges
from projector.changes.types import BackfillStamp, Change, ChangeKind, StreamPosition

T0 = 1_700_000_000


class OrderSource:
    """A stand-in for the source table: keeps the live orders and emits their stream changes."""

    def __init__(self, start: float = T0) -> None:
        self.items: dict[str, dict[str, Any]] = {}
        self.sequence = 0
        self.clock = start

    def _change(self, kind: ChangeKind, order_id: str, new: dict | None, old: dict | None) -> Change:
        self.sequence += 1
        self.clock += 1
        return Change(
            keys={"order_id": order_id},
            kind=kind,
            new_image=new,
            old_image=old,
            position=StreamPosition(created_at=self.clock, sequence=str(self.sequence * 100)),
        )

    def put(self, order_id: str, **fields: Any) -> Change:
        old = self.items.get(order_id)
        if old is None:
            new = {
                "order_id": order_id,
                "customer_id": "c1",
                "status": "PAID",
                "total": Decimal("10.00"),
                "currency": "EUR",
                "created_at": "2024-03-01T10:00:00Z",
                **fields,
                "version": Decimal(1),
            }
        else:
            new = {**old, **fields, "version": old["version"] + 1}
        self.items[order_id] = new
        return self._change(
            ChangeKind.MODIFY if old else ChangeKind.INSERT, order_id, dict(new), dict(old) if old else None
        )

    def remove(self, order_id: str) -> Change:
        old = self.items.pop(order_id)
        return self._change(ChangeKind.REMOVE, order_id, None, dict(old))

    def scan(self, order_id: str) -> Change:
        """The item as a backfill scan reads it now."""
        item = dict(self.items[order_id])
        return Change(
            keys={"order_id": order_id},
            kind=ChangeKind.INSERT,
            new_image=item,
            old_image=None,
            backfill=BackfillStamp(scan_started_at=self.clock, read_at=self.clock),
        )


def batch(changes: list[Change]) -> list[ItemChanges]:
    """Group a delivery by item in stream order, as the pipeline does (fresh copies: a redelivery)."""
    grouped: dict[str, list[Change]] = defaultdict(list)
    for index, change in enumerate(changes):
        grouped[str(change.keys["order_id"])].append(replace(change, batch_index=index))
    return [ItemChanges(item_id, items) for item_id, items in grouped.items()]
