"""``export_vs_scan``: loading a DynamoDB export against a scan backfill of the same table, items/s.

Subject: ``projector backfill --from-export`` (``Backfill`` with an ``Export``): the table's items
written as an export in DynamoDB's format (manifests, 4 gzipped data files, MD5s) into moto's S3,
each file downloaded, checksummed, verified line by line, then decoded, folded and bulk-written into a
fresh ``orders`` index by 4 workers. Baseline: ``projector backfill`` scanning the same table with 4
segments into a fresh index. Same sinks, same page size; the figure is the ratio (goal >= 1.0: reading
files must not be slower than scanning). moto's Scan (~490 items/s) bounds the baseline here; in AWS an
export costs no read capacity at all, which no ratio measured here can show.
"""

from __future__ import annotations

import os
import time
import uuid
from typing import TYPE_CHECKING, Any

from bench.env import DOCUMENTS_MODULE, MOTO_URL
from bench.harness import Goal, Samples, alternate, compare, log, quiet_stdout, timed

if TYPE_CHECKING:
    from bench.cases import Context

GOAL = Goal(">=", 1.0)
WORKERS = 4
PAGE_SIZE = 500


def export_vs_scan(ctx: Context) -> dict[str, Any]:
    from bench.cases.backfill import _seed
    from bench.cases.documents import Indexes
    from projections.orders import orders
    from projector.backfill import Backfill, BackfillOptions
    from projector.backfill.exportjobs import resolve
    from projector.clients import s3_client
    from projector.handler import runtime
    from tests.support.export_fixture import build_export, dynamodb_json, scan_all

    ctx.env.use(DOCUMENTS_MODULE)
    os.environ["AWS_ENDPOINT_URL_S3"] = MOTO_URL
    engine = runtime()
    places = Indexes(ctx)
    settings = engine.settings
    with quiet_stdout():
        seeded = _seed(engine, ctx.sizes.backfill_items)
        places.fresh_handler_index()
    s3 = s3_client(settings)
    bucket = f"bench-exports-{uuid.uuid4().hex[:8]}"
    s3.create_bucket(Bucket=bucket)
    arn = engine.dynamodb.describe_table(TableName=settings.source_table)["Table"]["TableArn"]
    moment = time.time()
    items = [dynamodb_json(item) for item in scan_all(engine.dynamodb, settings.source_table)]
    built = build_export(s3, bucket, items, export_time=moment, table_arn=arn, files=WORKERS)
    export = resolve(engine.dynamodb, s3, table=settings.source_table, region=settings.region, url=built.url)
    log(f"  seeded {seeded} orders, exported them as {len(export.files)} files")
    ours = Samples(f"export load, {WORKERS} files/workers", "items/s")
    scan = Samples(f"scan backfill, {WORKERS} segments", "items/s")
    options = BackfillOptions(segments=WORKERS, page_size=PAGE_SIZE, projections=(orders.name,))

    def once(use_export: bool, samples: Samples) -> None:
        with quiet_stdout():
            places.fresh_handler_index()
            job = Backfill(engine, options, export=export if use_export else None)
            source = job.source()
            checkpoint = job.prepare(source)
            seconds, report = timed(lambda: job.run(source, checkpoint))
        if report.status != "finished" or report.items != seeded:
            raise RuntimeError(f"backfill {report.status} with {report.items} items")
        samples.add(report.items / seconds)

    with quiet_stdout():  # warm up: clients, connections, the checkpoint folder
        once(True, Samples("warm-up", "items/s"))
    alternate(
        ctx.sizes.backfill_rounds, {"export": lambda _: once(True, ours), "scan": lambda _: once(False, scan)}
    )
    log(f"  export {ours.median:.0f} items/s, scan backfill {scan.median:.0f} items/s")
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        for entry in page.get("Contents", []):
            s3.delete_object(Bucket=bucket, Key=entry["Key"])
    s3.delete_bucket(Bucket=bucket)
    return compare(ours, scan, GOAL, items=seeded, files=len(export.files), page_size=PAGE_SIZE)
