"""The one apply path: decoded changes to each projection's store, with one dead-letter rule.

``stream`` parses Lambda-shaped stream batches into changes, ``apply`` hands the changes to every
projection's store grouped per item, ``poison`` is the dead-letter rule, ``outcome`` what became of a
batch. Backfill pages decode scanned items (``projector.backfill.apply``) and join at ``apply_changes``.
"""

from __future__ import annotations

from projector.pipeline.apply import AppliesChanges, StoreFor, apply_changes, group_by_item
from projector.pipeline.outcome import BatchOutcome, Tally, UnnamedFailureError
from projector.pipeline.poison import DeadLetterRule
from projector.pipeline.stream import StreamApplier, parse_records

__all__ = [
    "AppliesChanges",
    "BatchOutcome",
    "DeadLetterRule",
    "StoreFor",
    "StreamApplier",
    "Tally",
    "UnnamedFailureError",
    "apply_changes",
    "group_by_item",
    "parse_records",
]
