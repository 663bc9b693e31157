"""`projector backfill --from-export / --export-arn` against the real servers, while the stream flows.

Two kinds of export: moto's own (ExportTableToPointInTime, one data file, no manifests) and exports
this test writes in DynamoDB's documented format (manifests, checksums, several files). Live changes
(updates, deletes, re-creations) keep coming after the export time; the stream is applied from before
it; at the end every projection equals the source (`verify` and an independent truth check).
"""

from __future__ import annotations

import gzip
import json
import random
import time
import uuid
from typing import Any

import pytest

from devservers.workload import change_order, seed_orders
from projector.runtime import Runtime
from tests.integration.test_backfill import (
    LiveChanges,
    StreamApplier,
    assert_matches_truth,
    cli,
    ready_runtime,
    verify,
)
from tests.support.export_fixture import (
    build_export,
    dynamodb_json,
    gz_lines,
    md5_b64,
    scan_all,
    write_manifests,
)
from tests.support.truth import same_document, scan_items, visible_documents

pytestmark = pytest.mark.integration


@pytest.fixture
def runtime(settings_env: Any, opensearch: Any, dynamodb: Any, monkeypatch: pytest.MonkeyPatch) -> Runtime:
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", "http://127.0.0.1:5000")
    return ready_runtime()


@pytest.fixture
def s3(moto_server: str) -> Any:
    import boto3

    return boto3.client(
        "s3",
        endpoint_url=moto_server,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


@pytest.fixture
def bucket(s3: Any) -> Any:
    name = f"exports-{uuid.uuid4().hex[:10]}"
    s3.create_bucket(Bucket=name)
    yield name
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=name):
        for entry in page.get("Contents", []):
            s3.delete_object(Bucket=name, Key=entry["Key"])
    s3.delete_bucket(Bucket=name)


def assert_documents_match_truth(runtime: Runtime, dynamodb: Any, opensearch: Any) -> None:
    """The `orders` documents against the source table, item by item (for runs of that projection alone)."""
    truth = scan_items(dynamodb, runtime.settings.source_table)
    documents = visible_documents(opensearch, runtime.settings.index_prefix + "orders")
    assert sorted(documents) == sorted(truth)
    assert [key for key, item in truth.items() if not same_document(item, documents[key])] == []


def _table_arn(dynamodb: Any, table: str) -> str:
    return str(dynamodb.describe_table(TableName=table)["Table"]["TableArn"])


def _changes(dynamodb: Any, table: str, ids: list[str], count: int, seed: int) -> LiveChanges:
    """Random live changes to all but the last two ids (those are ``_delete_and_recreate``'s)."""
    return LiveChanges(dynamodb, table, ids[:-2], count, seed=seed)


def _delete_and_recreate(dynamodb: Any, table: str, ids: list[str]) -> None:
    """After the export time: delete one exported item for good, delete another and re-create it."""
    rng = random.Random(17)
    for order_id in ids[-2:]:
        dynamodb.delete_item(TableName=table, Key={"order_id": {"S": order_id}})
    assert change_order(dynamodb, table, rng, ids[-1]) == "recreate"


def test_moto_export_loads_by_arn_while_the_stream_flows(
    runtime: Runtime, dynamodb: Any, dynamodbstreams: Any, opensearch: Any, s3: Any, bucket: str
) -> None:
    table = runtime.settings.source_table
    ids = [order["order_id"] for order in seed_orders(dynamodb, table, 60)]
    applier = StreamApplier(runtime, dynamodb, dynamodbstreams)  # from before the export time
    applier.start()
    rng = random.Random(3)
    for order_id in ids[:10]:  # changes just before the export: in the export and in the stream
        change_order(dynamodb, table, rng, order_id)
    off = cli("export", "start", "--bucket", bucket, "--json")
    assert off.returncode != 0 and "point-in-time recovery is off" in off.stderr
    dynamodb.update_continuous_backups(
        TableName=table, PointInTimeRecoverySpecification={"PointInTimeRecoveryEnabled": True}
    )
    started = cli("export", "start", "--bucket", bucket, "--prefix", "p1", "--wait", "60", "--json")
    assert started.returncode == 0, started.stderr
    export = json.loads(started.stdout)
    assert export["status"] == "COMPLETED" and export["export_time"] is not None
    _delete_and_recreate(dynamodb, table, ids)
    live = _changes(dynamodb, table, ids, 50, seed=5)  # after the export time, during the load
    live.start()
    loaded = cli(
        "backfill", "--export-arn", export["export_arn"], "--projection", "orders", "--json", "--no-progress"
    )
    live.join()
    applier.drain()
    assert loaded.returncode == 0, loaded.stderr
    summary = json.loads(loaded.stdout)
    assert summary["status"] == "finished" and summary["items_scanned"] == export["item_count"] >= 55
    assert summary["export"]["manifest"] is False and summary["export"]["files"] == 1
    assert "no manifest-summary.json" in loaded.stderr and "data/ files were listed" in loaded.stderr
    assert "`projector export start`" in summary["export"]["export_time_source"]
    assert summary["scan_started_at"] == pytest.approx(export["export_time"])
    assert live.kinds["delete"] > 0 and applier.errors == []
    result = verify(runtime, projections=("orders",))  # the aggregates: the next test
    assert result.drift == 0, json.dumps(result.to_json())
    assert_documents_match_truth(runtime, dynamodb, opensearch)


def _fixture(runtime: Runtime, dynamodb: Any, s3: Any, bucket: str, files: int = 3) -> Any:
    table = runtime.settings.source_table
    export_time = time.time()  # taken before the snapshot's reads: the conservative side
    items = [dynamodb_json(item) for item in scan_all(dynamodb, table)]
    return build_export(
        s3, bucket, items, export_time=export_time, table_arn=_table_arn(dynamodb, table), files=files
    )


def test_documented_format_with_manifests_loads_while_the_stream_flows(
    runtime: Runtime, dynamodb: Any, dynamodbstreams: Any, opensearch: Any, s3: Any, bucket: str
) -> None:
    table = runtime.settings.source_table
    ids = [order["order_id"] for order in seed_orders(dynamodb, table, 60)]
    applier = StreamApplier(runtime, dynamodb, dynamodbstreams)
    applier.start()
    built = _fixture(runtime, dynamodb, s3, bucket, files=3)
    _delete_and_recreate(dynamodb, table, ids)
    time.sleep(6)  # > the 5 s life margin: only the export time (not the load's clock) keeps ids[-2] dead
    live = _changes(dynamodb, table, ids, 80, seed=9)
    live.start()
    loaded = cli("--from-export", built.url, "--segments", "2", "--page-size", "7", "--json", "--no-progress")
    live.join()
    applier.drain()
    assert loaded.returncode == 0, loaded.stderr
    summary = json.loads(loaded.stdout)
    assert summary["status"] == "finished" and summary["items_scanned"] == 60
    assert summary["export"]["manifest"] is True and summary["export"]["files"] == 3
    assert summary["export"]["export_time_source"] == "manifest-summary.json"
    assert [s["items"] for s in summary["segments"]] == [20, 20, 20]
    assert live.kinds["delete"] > 0
    assert ids[-2] not in visible_documents(opensearch, runtime.settings.index_prefix + "orders")
    result = verify(runtime)
    assert result.drift == 0, json.dumps(result.to_json())
    assert_matches_truth(runtime, dynamodb, opensearch)


def test_corrupt_files_write_nothing_of_themselves_and_resume_after_the_fix(
    runtime: Runtime, dynamodb: Any, opensearch: Any, s3: Any, bucket: str
) -> None:
    table = runtime.settings.source_table
    seed_orders(dynamodb, table, 48)
    built = _fixture(runtime, dynamodb, s3, bucket, files=4)
    good = dict(built.bodies)
    keys = [entry["dataFileS3Key"] for entry in built.files]
    lines = [[json.dumps({"Item": item}) for item in chunk] for chunk in built.items]
    # file 1: content changed after the manifest was written (checksum mismatch)
    s3.put_object(Bucket=bucket, Key=keys[1], Body=gz_lines(lines[1][1:]))
    # file 2: truncated gzip (the manifest describes the truncated file: only the gzip stream can tell)
    # file 3: one line that is not DynamoDB JSON (a plain attribute value), checksum and count consistent
    truncated = good[keys[2]][: len(good[keys[2]]) // 2]
    bad_line = gz_lines([*lines[3][:5], '{"Item": {"order_id": "O-plain", "total": 12}}', *lines[3][6:]])
    for index, body in ((2, truncated), (3, bad_line)):
        s3.put_object(Bucket=bucket, Key=keys[index], Body=body)
        built.files[index]["md5Checksum"] = md5_b64(body)
    write_manifests(s3, built, _table_arn(dynamodb, table))
    first = cli("--from-export", built.url, "--segments", "2", "--json", "--no-progress")
    assert first.returncode == 1
    summary = json.loads(first.stdout)
    errors = {s["segment"]: s["error"] or "" for s in summary["segments"]}
    assert "does not match the manifest" in errors[1] and keys[1] in errors[1]
    assert "not a complete gzip file" in errors[2] and keys[2] in errors[2]
    assert "line 6 is not" in errors[3] and keys[3] in errors[3] and "O-plain" not in errors[3]
    assert errors[0] == "" and summary["items_scanned"] == 12
    index = runtime.settings.index_prefix + "orders"
    written = set(visible_documents(opensearch, index))
    assert written == {item["order_id"]["S"] for item in built.items[0]}  # nothing from files 1-3
    # the fix: the files as the export wrote them, and the manifest's checksums again
    for key, body in good.items():
        s3.put_object(Bucket=bucket, Key=key, Body=body)
    rebuilt = [dict(entry, md5Checksum=md5_b64(good[entry["dataFileS3Key"]])) for entry in built.files]
    built.files[:] = rebuilt
    write_manifests(s3, built, _table_arn(dynamodb, table))
    resumed = cli("--from-export", built.url, "--resume", "--json", "--no-progress")
    assert resumed.returncode == 0, resumed.stderr
    again = json.loads(resumed.stdout)
    assert again["run_id"] == summary["run_id"] and again["items_scanned"] == 36
    assert [s["skipped"] for s in again["segments"]] == [True, False, False, False]
    assert verify(runtime).drift == 0
    assert_matches_truth(runtime, dynamodb, opensearch)


def test_a_truncated_gzip_is_named_even_without_a_manifest(
    runtime: Runtime, dynamodb: Any, s3: Any, bucket: str
) -> None:
    seed_orders(dynamodb, runtime.settings.source_table, 6)
    items = [dynamodb_json(item) for item in scan_all(dynamodb, runtime.settings.source_table)]
    key = "raw/AWSDynamoDB/abc/data/one.gz"
    body = gzip.compress("".join(json.dumps({"Item": i}) + "\n" for i in items).encode())
    s3.put_object(Bucket=bucket, Key=key, Body=body[:-9])
    done = cli("--from-export", f"s3://{bucket}/raw/AWSDynamoDB/abc/", "--json", "--no-progress")
    assert done.returncode == 2 and "the time of export" in done.stderr and "--export-time" in done.stderr
    done = cli(
        "--from-export", f"s3://{bucket}/raw/AWSDynamoDB/abc/", "--export-time", str(time.time()), "--json"
    )
    assert done.returncode == 1 and "not a complete gzip file" in done.stdout and key in done.stdout


def test_a_dry_run_of_an_export_writes_nothing(
    runtime: Runtime, dynamodb: Any, opensearch: Any, s3: Any, bucket: str
) -> None:
    seed_orders(dynamodb, runtime.settings.source_table, 20)
    built = _fixture(runtime, dynamodb, s3, bucket, files=2)
    done = cli("--from-export", built.url, "--dry-run", "--json", "--no-progress")
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert summary["dry_run"] and summary["items_scanned"] == 20 and summary["checkpoint"] is None
    assert summary["would_write"]["orders"] == {"documents": 20, "hidden": 0}
    assert visible_documents(opensearch, runtime.settings.index_prefix + "orders") == {}


def test_a_rebuild_from_an_export_needs_the_rebuild_begun_before_the_export(
    runtime: Runtime, dynamodb: Any, dynamodbstreams: Any, opensearch: Any, s3: Any, bucket: str
) -> None:
    table = runtime.settings.source_table
    ids = [order["order_id"] for order in seed_orders(dynamodb, table, 30)]
    applier = StreamApplier(runtime, dynamodb, dynamodbstreams)
    applier.start()
    early = _fixture(runtime, dynamodb, s3, bucket, files=2)  # taken before the rebuild began
    began = cli("--rebuild-phase", "begin", "--projection", "orders", "--json")
    assert began.returncode == 0, began.stderr
    target = json.loads(began.stdout)["projections"]["orders"]["target"]
    refused = cli("--from-export", early.url, "--rebuild", "--projection", "orders", "--json")
    assert refused.returncode == 2 and "began after the export time" in refused.stderr
    time.sleep(1.1)  # the index's creation date has millisecond precision; the export must be later
    later = _fixture(runtime, dynamodb, s3, bucket, files=2)
    live = _changes(dynamodb, table, ids, 20, seed=13)
    live.start()
    loaded = cli("--from-export", later.url, "--rebuild", "--projection", "orders", "--json", "--no-progress")
    live.join()
    applier.drain()
    assert loaded.returncode == 0, loaded.stderr
    summary = json.loads(loaded.stdout)
    assert summary["rebuild"]["orders"]["target"] == target == summary["rebuild"]["orders"]["reading"]
    assert verify(runtime, projections=("orders",)).drift == 0
    assert_documents_match_truth(runtime, dynamodb, opensearch)  # only `orders` was rebuilt
