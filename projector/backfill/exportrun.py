"""What an export load adds to a backfill run: its checkpoint identity, and the rebuild-order check."""

from __future__ import annotations

import hashlib
import logging
from typing import TYPE_CHECKING, Any

from projector.backfill.export import Export, ExportError

if TYPE_CHECKING:
    from projector.projection.base import Projection
    from projector.runtime import Runtime

logger = logging.getLogger(__name__)


def export_label(export: Export) -> str:
    """The checkpoint label of an export load: one checkpoint per export folder."""
    return "export-" + hashlib.sha256(export.url.encode()).hexdigest()[:12]


def export_source(export: Export) -> dict[str, Any]:
    """What identifies the export a checkpoint's "segments" (its data files) belong to."""
    return {
        "url": export.url,
        "export_time": export.export_time,
        "files": [entry.key for entry in export.files],
    }


def check_begun_before_export(
    runtime: Runtime, export: Export, projections: list[Projection], targets: dict[str, dict[str, Any]]
) -> None:
    """A rebuild from an export needs the rebuild begun before the export time: changes between the
    two would reach neither the export nor (through the stream) the new build. The build's creation
    date proves it where the store keeps one (an index); where not (an aggregate generation) that order
    is the operator's to keep."""
    for projection in projections:
        build = targets[projection.name]["target"]
        began = runtime.store_for(projection).build_started_at(projection, build)
        if began is None:
            logger.warning(
                "%s: cannot check that its rebuild began before the export (%s); it must have",
                projection.name,
                export.url,
            )
            continue
        if began > export.export_time:
            raise ExportError(
                f"the rebuild of {projection.name} ({build}) began after the export time of "
                f"{export.url}: the changes in between would be missing. Begin the rebuild "
                "(--rebuild-phase begin), then start the export, then load it with --rebuild"
            )
