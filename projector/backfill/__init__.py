"""Backfill: project the whole source table from a parallel scan, resumable, rate-limited, or as a rebuild.

Units: ``scanner`` (segments, pages, throttling retries), ``ratelimit`` (the shared token bucket),
``apply`` (a page through the sinks), ``dryrun`` (a collecting sink), ``checkpoint`` (per-segment
progress on disk), ``rebuild`` (new index or generation, swap, rollback) and ``run`` (orchestration).
"""

from __future__ import annotations

from projector.backfill.checkpoint import Checkpoint, ScanCheckpointError, SegmentRange
from projector.backfill.rebuild import Rebuilds
from projector.backfill.run import Backfill, BackfillError, BackfillOptions, BackfillReport
from projector.backfill.scanner import SegmentScanner, SourceTable

__all__ = [
    "Backfill",
    "BackfillError",
    "BackfillOptions",
    "BackfillReport",
    "Checkpoint",
    "Rebuilds",
    "ScanCheckpointError",
    "SegmentRange",
    "SegmentScanner",
    "SourceTable",
]
