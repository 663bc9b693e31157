"""projector: exact, idempotent projections of a DynamoDB table's stream.

The public API for projection authors lives here; everything else is engine internals.
"""

from __future__ import annotations

from projector.projection.base import (
    AggregateProjection,
    AttributeVersion,
    Count,
    DocumentProjection,
    StreamPositionVersion,
    Sum,
)

__all__ = [
    "AggregateProjection",
    "AttributeVersion",
    "Count",
    "DocumentProjection",
    "StreamPositionVersion",
    "Sum",
]
