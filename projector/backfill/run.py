"""The backfill run: a parallel scan fed through the sinks, checkpointed per page, optionally a rebuild.

Workers (threads) take segments from the range this process owns; each page is applied to every
selected projection and only then checkpointed. A failed item stops its segment where it is (the
page is read again on ``--resume``); a stop request (Ctrl-C, SIGTERM) lets each worker finish its
page, so the checkpoint always describes written pages. A rebuild begins before the scan starts, so
every change after ``scan_started_at`` reaches the new index or generation through the stream.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from projector.backfill.apply import PageApplier
from projector.backfill.checkpoint import Checkpoint, ScanCheckpointError, SegmentRange
from projector.backfill.dryrun import CollectingSink, WouldWrite
from projector.backfill.exportfiles import ExportReader
from projector.backfill.exportrun import check_begun_before_export, export_label, export_source
from projector.backfill.rebuild import Rebuilds
from projector.backfill.workitems import apply_pages
from projector.exceptions import ProjectorError
from projector.pipeline.outcome import BatchOutcome, Tally
from projector.source.ratelimit import TokenBucket
from projector.source.scanner import Page, SegmentScanner, SourceTable

if TYPE_CHECKING:
    from projector.backfill.export import Export
    from projector.projection.base import Projection
    from projector.runtime import Runtime

logger = logging.getLogger(__name__)

FINISHED, STOPPED, FAILED = "finished", "stopped", "failed"


class BackfillError(ProjectorError):
    """The run cannot start as asked (nothing to resume, a mismatching checkpoint, no rebuild begun)."""


@dataclass(frozen=True, slots=True)
class BackfillOptions:
    """What ``projector backfill`` was asked for."""

    segments: int = 4
    total_segments: int | None = None
    segment_range: str | None = None
    rate: float | None = None
    page_size: int = 500
    resume: bool = False
    rebuild: bool = False
    dry_run: bool = False
    projections: tuple[str, ...] = ()
    label: str | None = None  # a checkpoint of its own (verify --repair's rebuilds), beside the main one

    def range(self) -> SegmentRange:
        return SegmentRange.parse(self.total_segments or self.segments, self.segment_range)


@dataclass(slots=True)
class SegmentReport:
    segment: int
    items: int = 0
    pages: int = 0
    done: bool = False
    skipped: bool = False
    error: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "segment": self.segment,
            "items": self.items,
            "pages": self.pages,
            "done": self.done,
            "skipped": self.skipped,
            "error": self.error,
        }


@dataclass(slots=True)
class BackfillReport:
    """The summary of one run (``--json`` prints ``to_json()``)."""

    run_id: str
    table: str
    scan_started_at: float
    resumed: bool
    dry_run: bool
    status: str = FAILED
    stop_reason: str | None = None
    items: int = 0
    seconds: float = 0.0
    rate_limit: float | None = None
    projections: dict[str, Tally] = field(default_factory=dict)
    segments: dict[int, SegmentReport] = field(default_factory=dict)
    rebuild: dict[str, Any] | None = None
    would_write: dict[str, Any] | None = None
    checkpoint: str | None = None
    export: dict[str, Any] | None = None  # an export load: its folder, time (and its source), files

    @property
    def totals(self) -> Tally:
        total = Tally()
        for tally in self.projections.values():
            total.add(tally)
        return total

    def to_json(self) -> dict[str, Any]:
        totals = self.totals
        return {
            "run_id": self.run_id,
            "table": self.table,
            "status": self.status,
            "stop_reason": self.stop_reason,
            "resumed": self.resumed,
            "dry_run": self.dry_run,
            "scan_started_at": self.scan_started_at,
            "items_scanned": self.items,
            "written": totals.written,
            "stale": totals.stale,
            "poison": totals.poison,
            "failed": totals.failed,
            "seconds": round(self.seconds, 3),
            "rate": round(self.items / self.seconds, 1) if self.seconds > 0 else 0.0,
            "rate_limit": self.rate_limit,
            "projections": {name: tally.to_json() for name, tally in self.projections.items()},
            "segments": [report.to_json() for _, report in sorted(self.segments.items())],
            "rebuild": self.rebuild,
            "would_write": self.would_write,
            "checkpoint": self.checkpoint,
            "export": self.export,
        }


class Backfill:
    """One ``projector backfill`` run (or one piece of a split run)."""

    def __init__(
        self,
        runtime: Runtime,
        options: BackfillOptions,
        on_items: Callable[[int], None] | None = None,
        export: Export | None = None,
    ) -> None:
        """``export``: load that export's data files (one "segment" each) instead of scanning the table."""
        self.runtime = runtime
        self.options = options
        self.export = export
        self.on_items = on_items
        self.stop_event = threading.Event()
        self.stop_reason: str | None = None
        self.rebuilds = Rebuilds(runtime)
        self._lock = threading.Lock()

    # stop control (duck-typed for projector.runner.stop_on_signals) ----------------------------------
    @property
    def stopping(self) -> bool:
        return self.stop_event.is_set()

    def stop(self, reason: str) -> None:
        self.stop_reason = self.stop_reason or reason
        self.stop_event.set()

    # planning ---------------------------------------------------------------------------------------
    def selected(self, names: list[str] | tuple[str, ...] | None = None) -> list[Projection]:
        wanted = names or self.options.projections
        registry = self.runtime.registry
        return [registry.get(name) for name in wanted] if wanted else list(registry.all)

    def source(self) -> SourceTable:
        return SourceTable.describe(self.runtime.dynamodb, self.runtime.settings.source_table)

    def checkpoint_path(self, segments: SegmentRange) -> Path:
        settings = self.runtime.settings
        label = self.options.label
        if self.export is not None:
            label = export_label(self.export)
        return Checkpoint.path_for(settings.state_dir, settings.source_table, segments, label)

    def segment_range(self) -> SegmentRange:
        """The scan's segments, or one "segment" per data file of the export."""
        if self.export is not None:
            return SegmentRange(max(1, len(self.export.files)))
        return self.options.range()

    def remaining_items(self, source: SourceTable, checkpoint: Checkpoint) -> int:
        """ETA basis: DescribeTable's ItemCount (approximate) share of this range, less what is done."""
        done = sum(state.items for state in checkpoint.states.values())
        if self.export is not None:
            counted = [f.itemCount for f in self.export.files if f.itemCount is not None]
            total = sum(counted) if len(counted) == len(self.export.files) else None
            return max(0, (total or self.export.item_count or source.item_count) - done)
        return max(0, int(source.item_count * checkpoint.segments.fraction) - done)

    def prepare(self, source: SourceTable) -> Checkpoint:
        """The checkpoint this run continues or starts; begins the rebuilds of a whole-range run."""
        options, settings = self.options, self.runtime.settings
        segments = self.segment_range()
        path = None if options.dry_run else self.checkpoint_path(segments)
        if options.resume:
            checkpoint = Checkpoint.load(path) if path else None
            if checkpoint is None:
                raise BackfillError(f"nothing to resume: no checkpoint at {path}")
            self._check_resumable(checkpoint, segments)
            if checkpoint.done:
                return checkpoint  # only the swap (if any) is left, or nothing at all
        else:
            if path is not None and (old := Checkpoint.load(path)) is not None and not old.finished_at:
                logger.warning(
                    "starting over: the unfinished run %s in %s is replaced (use --resume to continue it)",
                    old.run_id,
                    path,
                )
            checkpoint = Checkpoint(
                path=path,
                table=settings.source_table,
                segments=segments,
                scan_started_at=0.0,
                projections=[p.name for p in self.selected()],
            )
        projections = self.selected(checkpoint.projections)
        if self.export is not None:
            checkpoint.source = export_source(self.export)
        if options.rebuild and not options.dry_run:
            if self.export is not None:
                checkpoint.rebuild = self._begun(projections)
                self.check_begun_before_export(projections, checkpoint.rebuild)
            elif segments.whole:
                targets = {
                    p.name: {"kind": self.rebuilds.kind(p), "target": self.rebuilds.begin(p)}
                    for p in projections
                }
                if checkpoint.rebuild is not None and checkpoint.rebuild != targets:
                    raise BackfillError(
                        f"the checkpoint's rebuild {checkpoint.rebuild} is not the one in progress "
                        f"{targets}; it was rolled back or replaced: start a new run"
                    )
                checkpoint.rebuild = targets
            else:
                checkpoint.rebuild = self._begun(projections)
        if self.export is not None:
            checkpoint.scan_started_at = self.export.export_time  # the export's snapshot instant
        elif not options.resume:
            checkpoint.scan_started_at = time.time()  # after the rebuild began: the stream covers the rest
        checkpoint.save()
        return checkpoint

    def _check_resumable(self, checkpoint: Checkpoint, segments: SegmentRange) -> None:
        options = self.options
        if checkpoint.table != self.runtime.settings.source_table:
            raise BackfillError(f"the checkpoint is of table {checkpoint.table!r}")
        if self.export is not None and checkpoint.source != export_source(self.export):
            raise BackfillError(
                f"the checkpoint is of export {(checkpoint.source or {}).get('url')} with other files or "
                f"another export time than {self.export.url} now: start a new run (without --resume)"
            )
        if options.total_segments is not None and checkpoint.segments != segments:
            raise BackfillError(f"the checkpoint is of segments {checkpoint.segments}, not {segments}")
        if options.projections and sorted(options.projections) != sorted(checkpoint.projections):
            raise BackfillError(f"the run being resumed covers projections {checkpoint.projections}")
        if bool(checkpoint.rebuild) != options.rebuild:
            hint = "add --rebuild" if checkpoint.rebuild else "drop --rebuild"
            raise BackfillError(
                f"the run being resumed {'is' if checkpoint.rebuild else 'is not'} a rebuild: {hint}"
            )

    def check_begun_before_export(
        self, projections: list[Projection], targets: dict[str, dict[str, Any]]
    ) -> None:
        assert self.export is not None
        check_begun_before_export(self.runtime, self.export, projections, targets)

    def begun(self) -> dict[str, dict[str, Any]]:
        """The rebuild targets of the selected projections; an error if a rebuild has not begun."""
        return self._begun(self.selected())

    def _begun(self, projections: list[Projection]) -> dict[str, dict[str, Any]]:
        """For one piece of a split rebuild: the rebuild must have begun (``--rebuild-phase begin``)."""
        targets: dict[str, dict[str, Any]] = {}
        for projection in projections:
            layout = self.rebuilds.layout(projection)
            if not layout.rebuilding:
                raise BackfillError(
                    f"no rebuild of {projection.name} in progress: run `projector backfill "
                    "--rebuild-phase begin` once before the pieces"
                )
            targets[projection.name] = {"kind": layout.kind, "target": layout.building}
        return targets

    # running ----------------------------------------------------------------------------------------
    def run(self, source: SourceTable, checkpoint: Checkpoint) -> BackfillReport:
        options = self.options
        projections = self.selected(checkpoint.projections)
        report = BackfillReport(
            run_id=checkpoint.run_id,
            table=source.name,
            scan_started_at=checkpoint.scan_started_at,
            resumed=options.resume,
            dry_run=options.dry_run,
            rate_limit=options.rate,
            rebuild=checkpoint.rebuild,
            checkpoint=str(checkpoint.path) if checkpoint.path else None,
            projections={p.name: Tally() for p in projections},
            export=self.export.to_json() if self.export is not None else None,
        )
        collector = CollectingSink() if options.dry_run else None
        sinks: dict[str, Any] = {p.name: collector or self.runtime.store_for(p) for p in projections}
        applier = PageApplier(
            projections, sinks, source.key_attributes, checkpoint.scan_started_at, self.runtime.dead_letters
        )
        todo = checkpoint.unfinished()
        workers = max(1, min(options.segments, len(todo) or 1))
        page_size = options.page_size
        limiter = None
        if options.rate:
            limiter = TokenBucket(options.rate)
            page_size = max(1, min(page_size, int(options.rate // workers)))
        scanner: SegmentScanner | ExportReader
        if self.export is not None:
            from projector.clients import s3_client

            scanner = ExportReader(
                s3_client(self.runtime.settings),
                self.export,
                source.key_attributes,
                page_size,
                self.stop_event,
                limiter,
            )
        else:
            scanner = SegmentScanner(
                self.runtime.dynamodb,
                source.name,
                checkpoint.segments.total,
                page_size,
                self.stop_event,
                limiter,
            )
        for segment, state in checkpoint.states.items():
            report.segments[segment] = SegmentReport(segment, done=state.done, skipped=state.done)
        started = time.monotonic()
        logger.info(
            "backfill %s of %s: segments %s, %d worker(s), scan started at %.3f",
            checkpoint.run_id,
            source.name,
            todo,
            workers,
            checkpoint.scan_started_at,
        )
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="backfill") as pool:
            for future in [
                pool.submit(self._segment, segment, scanner, applier, checkpoint, report) for segment in todo
            ]:
                future.result()
        report.seconds = time.monotonic() - started
        if collector is not None:
            report.would_write = {
                p.name: collector.would_write.get(p.name, WouldWrite()).to_json(p) for p in projections
            }
        report.status = self._conclude(checkpoint, projections, report)
        report.stop_reason = self.stop_reason
        return report

    def _segment(
        self,
        segment: int,
        scanner: SegmentScanner | ExportReader,
        applier: PageApplier,
        checkpoint: Checkpoint,
        report: BackfillReport,
    ) -> None:
        mine = report.segments[segment]

        def on_page(page: Page, outcome: BatchOutcome) -> None:
            with self._lock:
                report.items += outcome.items
                mine.items += outcome.items
                mine.pages += 1
                for name, tally in outcome.per_projection.items():
                    report.projections[name].add(tally)
            if outcome.ok:
                checkpoint.advance(segment, page.next_key, outcome.items)
                mine.done = page.next_key is None
                if self.on_items is not None:
                    self.on_items(outcome.items)

        try:
            mine.error = apply_pages(scanner.pages(segment, checkpoint.states[segment].key), applier, on_page)
            if mine.error:
                logger.error("segment %d stopped: %s", segment, mine.error)
        except Exception as error:  # scan retries exhausted, a sink raising: stop this segment, keep the rest
            mine.error = f"{type(error).__name__}: {error}"
            logger.exception("segment %d stopped", segment)

    def _conclude(self, checkpoint: Checkpoint, projections: list[Projection], report: BackfillReport) -> str:
        if not checkpoint.done:
            return STOPPED if self.stopping and not any(s.error for s in report.segments.values()) else FAILED
        if checkpoint.finished_at is not None:
            return FINISHED  # resumed a run that had already finished: nothing was done
        if checkpoint.rebuild and checkpoint.segments.whole:
            report.rebuild = {
                p.name: {**checkpoint.rebuild[p.name], "reading": self._swap(p, checkpoint)}
                for p in projections
            }
        checkpoint.finish()
        return FINISHED

    def _swap(self, projection: Projection, checkpoint: Checkpoint) -> str:
        """Finish the rebuild into the recorded target; tolerate a swap done before a crash."""
        target = (checkpoint.rebuild or {})[projection.name]["target"]
        layout = self.rebuilds.layout(projection)
        if layout.building == target:
            return self.rebuilds.finish(projection)
        if layout.read == target:
            return str(target)
        raise BackfillError(
            f"the rebuild of {projection.name} into {target} is no longer in progress "
            f"(reads {layout.read}, writes {list(layout.writes)}): it was rolled back"
        )

    # split rebuilds -------------------------------------------------------------------------------------
    def begin_phase(self) -> dict[str, Any]:
        """``--rebuild-phase begin``: start the rebuilds the pieces will fill; once, before any piece."""
        return {
            p.name: {"kind": self.rebuilds.kind(p), "target": self.rebuilds.begin(p)} for p in self.selected()
        }

    def finish_phase(self) -> dict[str, Any]:
        """``--rebuild-phase finish``: swap reads once every piece this machine can see has finished."""
        settings = self.runtime.settings
        folder = Checkpoint.path_for(settings.state_dir, settings.source_table, SegmentRange(1)).parent
        unfinished = []
        for path in sorted(folder.glob(f"{settings.source_table}.*of*.json")):
            try:
                piece = Checkpoint.load(path)
            except ScanCheckpointError as error:
                raise BackfillError(str(error)) from None
            if piece is not None and piece.rebuild and not piece.done:
                unfinished.append(f"{path.name} (segments {piece.unfinished()})")
        if unfinished:
            raise BackfillError(
                f"pieces not finished: {', '.join(unfinished)}; run them (with --resume) first"
            )
        return {
            p.name: {"kind": self.rebuilds.kind(p), "reading": self.rebuilds.finish(p)}
            for p in self.selected()
        }


def rebuilder(runtime: Runtime) -> Callable[[Projection, int], tuple[str, str | None]]:
    """How ``projector verify --repair`` rebuilds a drifted projection: a whole ``--rebuild`` backfill of
    it alone, swapped when it finishes; (status, the build now serving reads)."""

    def rebuild(projection: Projection, segments: int) -> tuple[str, str | None]:
        options = BackfillOptions(
            segments=segments, rebuild=True, projections=(projection.name,), label=f"repair-{projection.name}"
        )
        backfill = Backfill(runtime, options)
        source = backfill.source()
        result = backfill.run(source, backfill.prepare(source))
        reading = (result.rebuild or {}).get(projection.name, {}).get("reading")
        return result.status, reading

    return rebuild
