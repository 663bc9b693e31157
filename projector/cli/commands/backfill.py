"""`projector backfill`: project the whole source table from a parallel scan (resumable, rate-limited)."""

from __future__ import annotations

import logging
import sys
from collections.abc import Mapping
from contextlib import AbstractContextManager, nullcontext
from typing import TYPE_CHECKING, Any

import click

from projector.cli.output import (
    CommandError,
    emit,
    json_option,
    print_table,
    projection_option,
    segments_option,
)

if TYPE_CHECKING:
    from rich.progress import Progress, Task, TaskID

    from projector.backfill import BackfillReport
    from projector.backfill.export import Export
    from projector.runtime import Runtime

logger = logging.getLogger(__name__)

EXIT_STOPPED = 130


@click.command("backfill")
@segments_option("Parallel scan workers (and TotalSegments, unless --total-segments is given).")
@click.option(
    "--rate",
    type=click.FloatRange(min=0.001),
    default=None,
    metavar="ITEMS_PER_S",
    help="Most items read per second, shared by all workers.",
)
@click.option("--resume", is_flag=True, help="Continue the checkpointed run: unfinished segments only.")
@click.option(
    "--rebuild",
    is_flag=True,
    help="Fill a new index / generation beside the live one, then swap reads to it atomically.",
)
@click.option(
    "--dry-run", is_flag=True, help="Read and project, write nothing; report what would be written."
)
@projection_option
@click.option(
    "--total-segments",
    type=click.IntRange(1, 1_000_000),
    default=None,
    metavar="T",
    help="Split the scan into T segments across machines (with --segment-range).",
)
@click.option(
    "--segment-range",
    default=None,
    metavar="A:B",
    help="Scan only segments A..B-1 of --total-segments (one piece of a split run).",
)
@click.option(
    "--rebuild-phase",
    type=click.Choice(["begin", "finish"]),
    default=None,
    help="For a split rebuild: begin it once before the pieces, finish it once after them.",
)
@click.option(
    "--page-size",
    type=click.IntRange(1, 10_000),
    default=500,
    show_default=True,
    help="Items per Scan request (its Limit); a checkpoint is written per page.",
)
@click.option(
    "--from-export",
    "from_export",
    default=None,
    metavar="S3_URL",
    help="Load a DynamoDB export (s3://BUCKET/PREFIX/AWSDynamoDB/EXPORT_ID/) instead of scanning.",
)
@click.option(
    "--export-arn",
    default=None,
    metavar="ARN",
    help="Load this export: describe it, wait until it is COMPLETED, then load its files.",
)
@click.option(
    "--export-time",
    default=None,
    metavar="TIME",
    help="The export's time (ISO-8601 or epoch seconds) when neither manifest nor DescribeExport has it.",
)
@click.option(
    "--wait-timeout",
    type=click.FloatRange(min=0),
    default=3600.0,
    show_default=True,
    metavar="SECONDS",
    help="With --export-arn: how long to wait for the export to complete.",
)
@click.option("--on-aws", is_flag=True, help="Start the deployed backfill state machine and follow it.")
@click.option(
    "--state-machine",
    default=None,
    metavar="ARN",
    help="With --on-aws: the state machine (default $PROJECTOR_BACKFILL_STATE_MACHINE).",
)
@click.option("--no-progress", is_flag=True, help="No progress bar on stderr.")
@json_option
def command(
    segments: int,
    rate: float | None,
    resume: bool,
    rebuild: bool,
    dry_run: bool,
    projections: tuple[str, ...],
    total_segments: int | None,
    segment_range: str | None,
    rebuild_phase: str | None,
    page_size: int,
    from_export: str | None,
    export_arn: str | None,
    export_time: str | None,
    wait_timeout: float,
    on_aws: bool,
    state_machine: str | None,
    no_progress: bool,
    as_json: bool,
) -> None:
    """Project every item of the source table through the same sinks as the stream.

    Checkpoints per segment under PROJECTOR_STATE_DIR/backfill/; Ctrl-C or SIGTERM stops after the
    pages in flight (exit 130) and --resume continues. Items changed while the scan runs are the
    stream's to apply: the version rules rank each scanned item so that the newer state always wins.
    """
    from projector.backfill import Backfill, BackfillError, BackfillOptions, ScanCheckpointError
    from projector.backfill.export import ExportError
    from projector.runner import stop_on_signals
    from projector.runtime import Runtime
    from projector.sinks.aggregates.table import RebuildError
    from projector.sinks.opensearch.errors import IndexLayoutError

    if segment_range and not total_segments:
        raise CommandError("--segment-range needs --total-segments")
    exporting = bool(from_export or export_arn)
    if export_time and not exporting:
        raise CommandError("--export-time goes with --from-export or --export-arn")
    given = {
        "--total-segments": total_segments,
        "--segment-range": segment_range,
        "--rebuild-phase": rebuild_phase,
        "--rebuild": rebuild,
        "--resume": resume,
        "--dry-run": dry_run,
    }
    for chosen, rule in (("an export load", exporting), ("--on-aws", on_aws), ("--dry-run", dry_run)):
        if rule:
            _refuse_with(chosen, given)
    if on_aws:
        from projector.cli.commands._on_aws import run_on_aws

        run_on_aws(
            state_machine=state_machine,
            segments=total_segments or segments,
            rate=rate,
            rebuild=rebuild,
            from_export=from_export,
            export_arn=export_arn,
            export_time=_export_time(export_time),
            projections=projections,
            progress=not no_progress and sys.stderr.isatty(),
            as_json=as_json,
        )
        return
    options = BackfillOptions(
        segments=segments,
        total_segments=total_segments,
        segment_range=segment_range,
        rate=rate,
        page_size=page_size,
        resume=resume,
        rebuild=rebuild,
        dry_run=dry_run,
        projections=projections,
    )
    try:
        options.range()
    except ValueError as error:
        raise CommandError(str(error)) from None
    runtime = Runtime()
    progress = _Progress(enabled=not no_progress and sys.stderr.isatty())
    try:
        export = (
            _export(runtime, from_export, export_arn, _export_time(export_time), wait_timeout)
            if exporting
            else None
        )
    except ExportError as error:
        raise CommandError(str(error)) from None
    backfill = Backfill(runtime, options, on_items=progress.advance, export=export)
    try:
        if rebuild_phase:
            phase = backfill.begin_phase() if rebuild_phase == "begin" else backfill.finish_phase()
            emit({"phase": rebuild_phase, "projections": phase}, as_json, _print_phase)
            return
        source = backfill.source()
        checkpoint = backfill.prepare(source)
        with stop_on_signals(backfill), progress.running(backfill.remaining_items(source, checkpoint)):
            report = backfill.run(source, checkpoint)
    except (BackfillError, ScanCheckpointError, RebuildError, IndexLayoutError, ExportError) as error:
        raise CommandError(str(error)) from None
    emit(report.to_json(), as_json, lambda data: _print_report(report, data))
    if report.status == "stopped":
        raise CommandError(f"stopped ({report.stop_reason}); continue with --resume", exit_code=EXIT_STOPPED)
    if report.status != "finished":
        failed = [f"{s.segment}: {s.error}" for s in report.segments.values() if s.error]
        raise CommandError(
            f"segments failed ({'; '.join(failed)[:500]}); fix the cause, then --resume", exit_code=1
        )


# What each way of running refuses beside it, and why (one message per rule, naming every option).
_GOES_WITHOUT: dict[str, tuple[tuple[str, ...], str]] = {
    "an export load": (
        ("--total-segments", "--segment-range", "--rebuild-phase"),
        "it is split by its files (begin the rebuild before the export, then load it with --rebuild)",
    ),
    "--on-aws": (
        ("--dry-run", "--resume", "--rebuild-phase", "--segment-range"),
        "it runs the whole backfill in the state machine (a failed execution is started again)",
    ),
    "--dry-run": (("--rebuild", "--rebuild-phase", "--resume"), "it writes nothing"),
}


def _refuse_with(chosen: str, given: Mapping[str, object]) -> None:
    """CommandError when an option that ``chosen`` goes without was given too."""
    refused, why = _GOES_WITHOUT[chosen]
    if any(given[option] for option in refused):
        names = ", ".join(refused[:-1]) + " and " + refused[-1]
        raise CommandError(f"{chosen} goes without {names}: {why}")


def _export_time(text: str | None) -> float | None:
    """``--export-time``: epoch seconds, or ISO-8601 (a time without a zone is UTC)."""
    if text is None:
        return None
    from datetime import UTC, datetime

    try:
        return float(text)
    except ValueError:
        pass
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise CommandError(f"--export-time must be ISO-8601 or epoch seconds, got {text!r}") from None
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()


def _export(
    runtime: Runtime, url: str | None, arn: str | None, export_time: float | None, wait_timeout: float
) -> Export:
    """Resolve the export to load (waiting for --export-arn), and say what could not be checked."""
    from projector.backfill.exportjobs import resolve
    from projector.clients import s3_client

    settings = runtime.settings
    export = resolve(
        runtime.dynamodb,
        s3_client(settings),
        table=settings.source_table,
        region=settings.region,
        url=url,
        export_arn=arn,
        export_time=export_time,
        wait_timeout_s=wait_timeout,
        state_dir=settings.state_dir,
    )
    for note in export.notes:
        click.echo(f"note: {note}", err=True)
    return export


class _Progress:
    """A rich progress bar on stderr: items done, items/s, ETA from DescribeTable's ItemCount."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self._bar: Progress | None = None
        self._task: TaskID | None = None

    def running(self, total: int) -> AbstractContextManager[Progress | None]:
        if not self.enabled:
            return nullcontext()
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            ProgressColumn,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )
        from rich.text import Text

        class Rate(ProgressColumn):
            def render(self, task: Task) -> Text:
                return Text(f"{task.speed or 0:,.0f} items/s")

        self._bar = Progress(
            TextColumn("backfill"),
            BarColumn(),
            MofNCompleteColumn(),
            Rate(),
            TimeElapsedColumn(),
            TextColumn("ETA"),
            TimeRemainingColumn(),
            console=Console(stderr=True),
            transient=False,
        )
        self._task = self._bar.add_task("backfill", total=total or None)
        return self._bar

    def advance(self, items: int) -> None:
        if self._bar is not None and self._task is not None:
            self._bar.advance(self._task, items)


def _print_phase(data: dict[str, Any]) -> None:
    for name, entry in data["projections"].items():
        where = entry.get("target") or entry.get("reading")
        verb = "rebuilding into" if data["phase"] == "begin" else "now reading"
        click.echo(f"{name:24} {entry['kind']:9} {verb} {where}")


def _print_report(report: BackfillReport, data: dict[str, Any]) -> None:
    if report.dry_run and report.would_write:
        print_table(
            "dry run: would write",
            ["projection", "would write"],
            [
                [name, ", ".join(f"{k} {v}" for k, v in counts.items())]
                for name, counts in report.would_write.items()
            ],
        )
    else:
        print_table(
            f"backfill {report.run_id} of {report.table}",
            ["projection", "written", "stale", "poison", "failed", "requests"],
            [[name, *tally.values()] for name, tally in data["projections"].items()],
        )
    print_table(
        "data files" if report.export else "segments",
        ["file" if report.export else "segment", "items", "pages", "state"],
        [
            [
                s["segment"],
                s["items"],
                s["pages"],
                "skipped (done before)"
                if s["skipped"]
                else "done"
                if s["done"]
                else (s["error"] or "unfinished"),
            ]
            for s in data["segments"]
        ],
    )
    if report.rebuild:
        for name, entry in report.rebuild.items():
            click.echo(
                f"rebuild {name}: {entry.get('target')}"
                + (f", now reading {entry['reading']}" if entry.get("reading") else " (in progress)")
            )
    limit = f" (limit {report.rate_limit:g})" if report.rate_limit else ""
    click.echo(
        f"{data['status']}: {data['items_scanned']} items in {data['seconds']:.1f} s, "
        f"{data['rate']:g} items/s{limit}"
    )
