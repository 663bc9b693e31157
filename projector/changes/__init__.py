"""Item changes: what the engine feeds projections, from a stream record or a table scan."""

from __future__ import annotations

from projector.changes.types import BackfillStamp, Change, ChangeKind, StreamPosition

__all__ = ["BackfillStamp", "Change", "ChangeKind", "StreamPosition"]
