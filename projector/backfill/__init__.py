"""Backfill: project the whole source table from a parallel scan, resumable, rate-limited, or as a rebuild.

Units: ``apply`` (a page through the stores; the scan itself is ``projector.source``), ``dryrun`` (a collecting sink), ``checkpoint`` (per-segment
progress on disk), ``rebuild`` (new index or generation, swap, rollback) and ``run`` (orchestration).
"""

from __future__ import annotations

from projector.backfill.checkpoint import Checkpoint, ScanCheckpointError, SegmentRange
from projector.backfill.rebuild import Rebuilds
from projector.backfill.run import Backfill, BackfillError, BackfillOptions, BackfillReport

__all__ = [
    "Backfill",
    "BackfillError",
    "BackfillOptions",
    "BackfillReport",
    "Checkpoint",
    "Rebuilds",
    "ScanCheckpointError",
    "SegmentRange",
]
