"""``backfill_vs_scan``: backfill items/s against a scan that only reads, at 1, 2 and 4 segments.

Subject: ``projector.backfill.Backfill`` (the code behind ``projector backfill``) projecting a seeded
source table into a fresh ``orders`` index: parallel Scan pages (ConsistentRead, 500 items) decoded,
folded and bulk-written, checkpointed per page. Baseline: the same parallel Scan with the same client,
page size and workers, reading only. moto's Scan (~490 items/s whatever the segments, measured on the local moto server) bounds
both, so the ratio is the figure: how much the projection work slows the scan down.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from bench.env import DOCUMENTS_MODULE
from bench.harness import Goal, Samples, alternate, compare, failed, log, pending, quiet_stdout, timed

if TYPE_CHECKING:
    from bench.cases import Context

GOAL = Goal(">=", 0.9)
GOAL_SEGMENTS = 4
PAGE_SIZE = 500


def scan_only(client: Any, table: str, segments: int, page_size: int = PAGE_SIZE) -> int:
    """Every item of ``table`` read by ``segments`` parallel workers; answers the count."""

    def segment(number: int) -> int:
        count, start = 0, None
        while True:
            request: dict[str, Any] = {
                "TableName": table,
                "Segment": number,
                "TotalSegments": segments,
                "ConsistentRead": True,
                "Limit": page_size,
            }
            if start is not None:
                request["ExclusiveStartKey"] = start
            page = client.scan(**request)
            count += len(page.get("Items", []))
            start = page.get("LastEvaluatedKey")
            if start is None:
                return count

    with ThreadPoolExecutor(max_workers=segments, thread_name_prefix="scan") as pool:
        return sum(pool.map(segment, range(segments)))


def _seed(engine: Any, items: int) -> int:
    from devservers.workload import seed_orders
    from projector.setup import create_source_table

    table = engine.settings.source_table
    create_source_table(engine.dynamodb, table, ("order_id",))
    seed_orders(engine.dynamodb, table, items, seed=5)
    return items


def backfill_vs_scan(ctx: Context) -> dict[str, Any]:
    try:
        from projector.backfill import Backfill, BackfillOptions
    except ImportError as error:
        return pending(f"projector.backfill is not importable yet: {error}", GOAL)
    from bench.cases.documents import Indexes
    from projections.orders import orders
    from projector.handler import runtime
    from projector.sinks.opensearch import indexes

    sizes = ctx.sizes
    ctx.env.use(DOCUMENTS_MODULE)
    engine = runtime()
    places = Indexes(ctx)
    with quiet_stdout():
        seeded = _seed(engine, sizes.backfill_items)
        places.fresh_handler_index()
    log(f"  seeded {seeded} orders into {engine.settings.source_table}")
    with quiet_stdout():  # warm up: imports, clients, connections, the first checkpoint folder
        job = Backfill(engine, BackfillOptions(segments=1, page_size=PAGE_SIZE, projections=(orders.name,)))
        source = job.source()
        job.run(source, job.prepare(source))
    entries: dict[str, Any] = {}
    for segments in sizes.backfill_segments:
        ours = Samples(f"projector backfill, {segments} segment(s)", "items/s")
        scan = Samples(f"Scan only, {segments} segment(s)", "items/s")
        facts: dict[str, Any] = {}

        def run_backfill(
            _: int, segments: int = segments, ours: Samples = ours, facts: dict[str, Any] = facts
        ) -> None:
            with quiet_stdout():
                places.fresh_handler_index()
                job = Backfill(
                    engine,
                    BackfillOptions(segments=segments, page_size=PAGE_SIZE, projections=(orders.name,)),
                )
                source = job.source()
                checkpoint = job.prepare(source)
                seconds, report = timed(lambda: job.run(source, checkpoint))
            if report.status != "finished":
                raise RuntimeError(f"backfill {report.status}: {report.to_json()['segments']}")
            ours.add(report.items / seconds)
            facts.update(
                items=report.items,
                written=report.totals.written,
                documents=places.visible(indexes.names(orders, ctx.env.index_prefix).read_alias),
            )

        def run_scan(_: int, segments: int = segments, scan: Samples = scan) -> None:
            seconds, count = timed(lambda: scan_only(engine.dynamodb, engine.settings.source_table, segments))
            scan.add(count / seconds)

        try:
            alternate(sizes.backfill_rounds, {"backfill": run_backfill, "scan": run_scan})
        except Exception as error:  # a half-written backfill module: report, keep the other cases
            log(f"  backfill at {segments} segment(s) failed: {type(error).__name__}: {error}")
            entries[str(segments)] = failed(error, GOAL)
            continue
        entries[str(segments)] = compare(ours, scan, GOAL, page_size=PAGE_SIZE, **facts)
        log(f"  {segments} segment(s): backfill {ours.median:.0f} items/s, scan {scan.median:.0f} items/s")
    at_goal = entries.get(str(GOAL_SEGMENTS), {})
    return {
        "status": "measured" if all(e.get("status") == "measured" for e in entries.values()) else "failed",
        "ratio": at_goal.get("ratio"),
        "goal": f"ratio at {GOAL_SEGMENTS} segments {GOAL}",
        "goal_met": at_goal.get("goal_met"),
        "items": seeded,
        "by_segments": entries,
    }
