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

__all__ = [
    "AggregateProjection",
    "AttributeVersion",
    "Count",
    "DocumentProjection",
    "Measure",
    "Projection",
    "Registry",
    "StreamPositionVersion",
    "Sum",
    "VersionPolicy",
    "load_projections",
]
