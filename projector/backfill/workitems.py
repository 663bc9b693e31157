"""Backfill work items: ``plan`` splits a backfill into independent items, ``apply_item`` runs one.

An item is one scan segment of ``total_segments`` or one data file of an export. Items share nothing
but the run's start (the scan start, or the export time) and the sinks' version rules, so any number
of them can run at once, anywhere: threads of ``projector backfill``, or Lambda invocations fanned
out by a Step Functions Distributed Map. ``apply_item`` is resumable within the item: it stops
between pages when the deadline comes near and answers the item with its ``cursor`` advanced, which
is the input of the next invocation. The page loop (``apply_pages``) is the one ``Backfill`` uses.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from projector.backfill.apply import PageApplier
from projector.backfill.export import DataFile, Export
from projector.backfill.exportfiles import ExportReader
from projector.jsonsafe import jsonable, key_from_json
from projector.pipeline.outcome import BatchOutcome, Tally
from projector.retry import Deadline
from projector.source.ratelimit import TokenBucket
from projector.source.scanner import Page, SegmentScanner, SourceTable

if TYPE_CHECKING:
    from projector.runtime import Runtime

logger = logging.getLogger(__name__)

DEFAULT_MARGIN_MS = 5_000


class WorkItem(BaseModel):
    """One independent piece of a backfill, as a Map state item and a Lambda event (JSON)."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["scan", "export"]
    table: str
    started_at: float = Field(description="the scan's start, or the export time: the run's cutoff")
    segment: int = 0
    total_segments: int = 1
    export_url: str | None = None
    file: DataFile | None = None
    projections: list[str] = Field(default_factory=list)
    page_size: int = 500
    rate: float | None = Field(default=None, description="items per second for this item alone")
    cursor: dict[str, Any] | None = None
    items_done: int = 0
    invocations: int = 0

    @property
    def label(self) -> str:
        if self.kind == "scan":
            return f"segment {self.segment}/{self.total_segments} of {self.table}"
        return f"{self.export_url}{self.file.key.rsplit('/', 1)[-1] if self.file else '?'}"


class ItemResult(BaseModel):
    """What one invocation did; ``next`` is the item to run again when not ``done``."""

    done: bool
    item: WorkItem
    items: int = 0
    pages: int = 0
    written: int = 0
    stale: int = 0
    poison: int = 0
    failed: int = 0
    error: str | None = None
    stopped_for_deadline: bool = False


def plan(
    table: str,
    *,
    total_segments: int | None = None,
    export: Export | None = None,
    started_at: float | None = None,
    projections: list[str] | tuple[str, ...] = (),
    page_size: int = 500,
    rate: float | None = None,
    concurrency: int = 1,
) -> list[WorkItem]:
    """The items of a backfill: ``total_segments`` scan segments, or one item per export data file.

    ``rate`` is the whole run's items per second; each item gets ``rate / concurrency`` of it.
    ``started_at`` (a scan) must be taken after any rebuild began; it defaults to now.
    """
    share = rate / max(1, concurrency) if rate else None
    common: dict[str, Any] = {
        "table": table,
        "projections": list(projections),
        "page_size": page_size,
        "rate": share,
    }
    if export is not None:
        return [
            WorkItem(
                kind="export",
                started_at=export.export_time,
                segment=index,
                total_segments=len(export.files),
                export_url=export.url,
                file=entry,
                **common,
            )
            for index, entry in enumerate(export.files)
        ]
    total = total_segments or 1
    moment = time.time() if started_at is None else started_at
    return [
        WorkItem(kind="scan", started_at=moment, segment=segment, total_segments=total, **common)
        for segment in range(total)
    ]


def apply_pages(
    pages: Iterator[Page],
    applier: PageApplier,
    on_page: Callable[[Page, BatchOutcome], None],
    keep_going: Callable[[], bool] = lambda: True,
) -> str | None:
    """Apply pages until they end, one fails (its error), or ``keep_going`` says stop before the next."""
    for page in pages:
        outcome = applier.apply(page)
        on_page(page, outcome)
        if not outcome.ok:
            first = next(iter(outcome.failures.items()))
            return f"{len(outcome.failures)} item(s) not written, e.g. {first[0]}: {first[1]}"
        if page.next_key is None or not keep_going():
            return None
    return None


def _sinks(runtime: Runtime, names: list[str]) -> tuple[list[Any], dict[str, Any]]:
    registry = runtime.registry
    projections = [registry.get(name) for name in names] if names else list(registry.all)
    sinks = {p.name: runtime.store_for(p) for p in projections}
    return projections, sinks


def apply_item(runtime: Runtime, item: WorkItem, deadline: Deadline | None = None) -> ItemResult:
    """Apply ``item`` from its cursor until it is done or the deadline nears (then ``done`` is False)."""
    deadline = deadline or Deadline.never()
    source = SourceTable.describe(runtime.dynamodb, item.table)
    projections, sinks = _sinks(runtime, item.projections)
    applier = PageApplier(projections, sinks, source.key_attributes, item.started_at, runtime.dead_letters)
    stop = threading.Event()
    limiter = TokenBucket(item.rate) if item.rate else None
    page_size = max(1, min(item.page_size, int(item.rate))) if item.rate else item.page_size
    pages = _pages(runtime, item, source, page_size, stop, limiter)
    result = ItemResult(done=False, item=item.model_copy(update={"invocations": item.invocations + 1}))
    tally = Tally()
    slowest = 0.0
    last = time.monotonic()

    def on_page(page: Page, outcome: BatchOutcome) -> None:
        nonlocal slowest, last
        now = time.monotonic()
        slowest, last = max(slowest, now - last), now
        for part in outcome.per_projection.values():
            tally.add(part)
        if outcome.ok:
            result.items += outcome.items
            result.pages += 1
            result.done = page.next_key is None
            result.item.cursor = jsonable(page.next_key)
            result.item.items_done += outcome.items

    def keep_going() -> bool:
        if deadline.remaining() > 2 * slowest:
            return True
        result.stopped_for_deadline = True
        return False

    try:
        result.error = apply_pages(pages, applier, on_page, keep_going)
    except Exception as error:  # a file that fails its checks, scan retries exhausted: the item fails
        result.error = f"{type(error).__name__}: {error}"
    finally:
        stop.set()
    result.written, result.stale, result.poison, result.failed = (
        tally.written,
        tally.stale,
        tally.poison,
        tally.failed,
    )
    logger.info(
        "%s: %d items in %d pages, %s",
        item.label,
        result.items,
        result.pages,
        "done" if result.done else result.error or "stopped before the deadline",
    )
    return result


def _pages(
    runtime: Runtime,
    item: WorkItem,
    source: SourceTable,
    page_size: int,
    stop: threading.Event,
    limiter: TokenBucket | None,
) -> Iterator[Page]:
    key = key_from_json(item.cursor)
    if item.kind == "scan":
        scanner = SegmentScanner(runtime.dynamodb, item.table, item.total_segments, page_size, stop, limiter)
        return scanner.pages(item.segment, key)
    from projector.backfill.export import parse_url
    from projector.clients import s3_client

    assert item.file is not None and item.export_url is not None
    bucket, folder = parse_url(item.export_url)
    export = Export(
        bucket=bucket,
        folder=folder,
        files=[item.file],
        export_time=item.started_at,
        time_source="work item",
        manifest=item.file.md5Checksum is not None,
    )
    reader = ExportReader(
        s3_client(runtime.settings), export, source.key_attributes, page_size, stop, limiter
    )
    return reader.pages(0, key)
