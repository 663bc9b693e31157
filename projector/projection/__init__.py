"""The projection API: declarative definitions that map an item to writes, with no I/O."""

from __future__ import annotations

from projector.projection.base import (
    AggregateProjection,
    AttributeVersion,
    Count,
    DocumentProjection,
    Measure,
    Projection,
    StreamPositionVersion,
    Sum,
    VersionPolicy,
)
from projector.projection.registry import Registry, load_projections
from projector.projection.rendering import Rejected, guarded

__all__ = [
    "AggregateProjection",
    "AttributeVersion",
    "Count",
    "DocumentProjection",
    "Measure",
    "Projection",
    "Registry",
    "Rejected",
    "StreamPositionVersion",
    "Sum",
    "VersionPolicy",
    "guarded",
    "load_projections",
]
