"""Export loading, work items and --on-aws without servers: moto's in-process mocks and fakes."""

from __future__ import annotations

import gzip
import json
import threading
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest
from moto import mock_aws

from projector.backfill.export import DataFile, Export, ExportError, locate, parse_url
from projector.backfill.exportfiles import ExportReader, verify_file
from projector.backfill.exportjobs import resolve, start_export, wait
from projector.backfill.stepfunctions import OnAwsError, execution_input, follow
from projector.backfill.workitems import plan
from tests.support.export_fixture import build_export, gz_lines, md5_b64

pytestmark = pytest.mark.unit

ITEMS = [{"order_id": {"S": f"O{n}"}, "version": {"N": "1"}, "total": {"N": "1.50"}} for n in range(7)]


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Any:
    for name in ("AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL_DYNAMODB", "AWS_ENDPOINT_URL"):
        monkeypatch.delenv(name, raising=False)
    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        dynamodb = boto3.client("dynamodb", region_name="us-east-1")
        s3.create_bucket(Bucket="exports")
        dynamodb.create_table(
            TableName="orders",
            KeySchema=[{"AttributeName": "order_id", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "order_id", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        yield s3, dynamodb


def _arn(dynamodb: Any) -> str:
    return str(dynamodb.describe_table(TableName="orders")["Table"]["TableArn"])


def test_urls_must_name_an_export_folder() -> None:
    assert parse_url("s3://b/p/q/AWSDynamoDB/0123-ab/") == ("b", "p/q/AWSDynamoDB/0123-ab")
    with pytest.raises(ExportError, match="must look like"):
        parse_url("s3://b/p/data/")


def test_manifests_give_files_time_and_table(aws: Any) -> None:
    s3, dynamodb = aws
    built = build_export(s3, "exports", ITEMS, export_time=1_700_000_000.25, table_arn=_arn(dynamodb))
    export = resolve(dynamodb, s3, table="orders", region="us-east-1", url=built.url)
    assert export.manifest and export.time_source == "manifest-summary.json"
    assert export.export_time == 1_700_000_000.25 and export.item_count == 7
    assert [f.key for f in export.files] == [f["dataFileS3Key"] for f in built.files]
    with pytest.raises(ExportError, match="not of the source table"):
        other = build_export(s3, "exports", ITEMS, export_time=1.0, table_arn=_arn(dynamodb) + "x")
        resolve(dynamodb, s3, table="orders", region="us-east-1", url=other.url)
    with pytest.raises(ExportError, match="may only be earlier"):
        locate(s3, built.url, region="us-east-1", export_time=1_700_000_001.0)


def test_without_manifest_the_time_must_be_given_and_the_listing_is_said(aws: Any) -> None:
    s3, _ = aws
    s3.put_object(Bucket="exports", Key="x/AWSDynamoDB/e1/data/a.gz", Body=gz_lines([]))
    with pytest.raises(ExportError, match="pass --export-time"):
        locate(s3, "s3://exports/x/AWSDynamoDB/e1/", region="us-east-1")
    export = locate(s3, "s3://exports/x/AWSDynamoDB/e1/", region="us-east-1", export_time=5.0)
    assert not export.manifest and export.time_source == "--export-time"
    assert any("data/ files were listed" in note for note in export.notes)


def test_a_bucket_in_another_region_is_refused(aws: Any) -> None:
    s3, _ = aws
    s3.create_bucket(Bucket="far", CreateBucketConfiguration={"LocationConstraint": "eu-west-2"})
    with pytest.raises(ExportError, match="is in eu-west-2, not in us-east-1"):
        locate(s3, "s3://far/x/AWSDynamoDB/e1/", region="us-east-1", export_time=1.0)


def test_manifest_counts_must_add_up(aws: Any) -> None:
    s3, dynamodb = aws
    built = build_export(s3, "exports", ITEMS, export_time=10.0, table_arn=_arn(dynamodb))
    summary = json.loads(
        s3.get_object(Bucket="exports", Key=f"{built.folder}/manifest-summary.json")["Body"].read()
    )
    summary["itemCount"] = 8
    s3.put_object(Bucket="exports", Key=f"{built.folder}/manifest-summary.json", Body=json.dumps(summary))
    with pytest.raises(ExportError, match=r"lists 7 items but manifest-summary\.json says 8"):
        locate(s3, built.url, region="us-east-1")


@pytest.mark.parametrize(
    ("body", "entry", "message"),
    [
        (
            gz_lines([json.dumps({"Item": i}) for i in ITEMS]),
            {"md5Checksum": "AAAAAAAAAAAAAAAAAAAAAA=="},
            "MD5",
        ),
        (gz_lines([json.dumps({"Item": i}) for i in ITEMS])[:-12], {}, "not a complete gzip file"),
        (b"not gzip at all", {}, "not a complete gzip file"),
        (gz_lines(['{"Item": {"order_id": {"S": "a"}}}', "{oops"]), {}, "line 2 is not JSON"),
        (gzip.compress(b'{"Item": {"order_id": {"S": "oops\xff"}}}\n', mtime=0), {}, "line 1 is not UTF-8"),
        (gz_lines(['{"Item": {"order_id": {"S": "a"}}}', '{"Items": {}}']), {}, 'line 2 is not {"Item"'),
        (gz_lines(['{"Item": {"order_id": {"X": "a"}}}']), {}, "line 1 is not DynamoDB JSON"),
        (
            gz_lines(['{"Item": {"order_id": {"S": "a"}, "total": {"N": "oops"}}}']),
            {},
            r"DynamoDB JSON \(at total\)",
        ),
        (gz_lines(['{"Item": {"id": {"S": "a"}}}']), {}, "another table"),
        (
            gz_lines([json.dumps({"Item": i}) for i in ITEMS]),
            {"itemCount": 6},
            "7 items, the manifest says 6",
        ),
    ],
)
def test_a_bad_file_fails_whole_naming_itself(
    aws: Any, body: bytes, entry: dict[str, Any], message: str
) -> None:
    s3, _ = aws
    s3.put_object(Bucket="exports", Key="e/data/f.json.gz", Body=body)
    with pytest.raises(ExportError, match=message) as caught:
        verify_file(s3, "exports", DataFile(dataFileS3Key="e/data/f.json.gz", **entry), ("order_id",))
    assert "s3://exports/e/data/f.json.gz" in str(caught.value)
    assert "oops" not in str(caught.value)


def test_pages_resume_after_the_checkpointed_line_and_md5_may_be_hex(aws: Any) -> None:
    s3, _ = aws
    body = gz_lines([json.dumps({"Item": i}) for i in ITEMS])
    s3.put_object(Bucket="exports", Key="p/AWSDynamoDB/e/data/f.json.gz", Body=body)
    import hashlib

    entry = DataFile(
        dataFileS3Key="p/AWSDynamoDB/e/data/f.json.gz", itemCount=7, md5Checksum=hashlib.md5(body).hexdigest()
    )
    export = Export("exports", "p/AWSDynamoDB/e", [entry], 42.0, "test", True)
    reader = ExportReader(s3, export, ("order_id",), 3, threading.Event())
    pages = list(reader.pages(0, {"line": {"N": "2"}}))
    assert [[i["order_id"]["S"] for i in p.items] for p in pages] == [["O2", "O3", "O4"], ["O5", "O6"]]
    assert [p.next_key for p in pages] == [{"line": {"N": "5"}}, None]
    assert {p.read_at for p in pages} == {42.0}
    assert md5_b64(body) != entry.md5Checksum


def test_export_start_needs_point_in_time_recovery_and_a_failed_export_is_named(aws: Any) -> None:
    _, dynamodb = aws
    with pytest.raises(ExportError, match="point-in-time recovery is off for table orders"):
        start_export(dynamodb, "orders", "exports", "p")
    dynamodb.update_continuous_backups(
        TableName="orders", PointInTimeRecoverySpecification={"PointInTimeRecoveryEnabled": True}
    )
    started = start_export(dynamodb, "orders", "no-such-bucket", "p")
    with pytest.raises(ExportError, match=f"export {started['ExportArn']} FAILED"):
        wait(dynamodb, started["ExportArn"], timeout_s=10, poll_s=0.05)


def test_plan_splits_scans_and_exports_and_shares_the_rate() -> None:
    items = plan("orders", total_segments=4, rate=100, concurrency=2, started_at=7.0)
    assert [(i.segment, i.total_segments, i.rate, i.started_at) for i in items] == [
        (n, 4, 50.0, 7.0) for n in range(4)
    ]
    files = [DataFile(dataFileS3Key=f"x/AWSDynamoDB/e/data/{n}.gz", itemCount=n) for n in range(3)]
    export = Export("b", "x/AWSDynamoDB/e", files, 9.5, "test", True)
    planned = plan("orders", export=export)
    assert [(i.kind, i.file, i.started_at, i.export_url) for i in planned] == [
        ("export", f, 9.5, "s3://b/x/AWSDynamoDB/e/") for f in files
    ]


class FakeSfn:
    def __init__(self, statuses: list[str]) -> None:
        self.statuses = statuses
        self.calls = 0

    def describe_execution(self, executionArn: str) -> dict[str, Any]:
        status = self.statuses[min(self.calls, len(self.statuses) - 1)]
        self.calls += 1
        found: dict[str, Any] = {"status": status}
        if status == "SUCCEEDED":
            found["output"] = json.dumps({"verify": {"summary": {"layout": {}}}})
        if status == "FAILED":
            found.update(error="BackfillFailed", cause="item 3")
        return found

    def list_map_runs(self, executionArn: str) -> dict[str, Any]:
        return {"mapRuns": [{"mapRunArn": "run"}]} if self.calls > 1 else {"mapRuns": []}

    def describe_map_run(self, mapRunArn: str) -> dict[str, Any]:
        return {"itemCounts": {"total": 4, "succeeded": self.calls - 1, "running": 1, "failed": 0}}


def test_follow_reports_map_run_counts_until_the_end() -> None:
    seen: list[tuple[str, int, int]] = []
    final = follow(
        FakeSfn(["RUNNING", "RUNNING", "RUNNING", "SUCCEEDED"]),
        "exec",
        lambda p: seen.append((p.status, p.items_succeeded, p.items_total)),
        sleep=lambda _: None,
    )
    assert seen == [("RUNNING", 0, 0), ("RUNNING", 1, 4), ("RUNNING", 2, 4), ("SUCCEEDED", 3, 4)]
    assert final.output == {"verify": {"summary": {"layout": {}}}}
    with pytest.raises(OnAwsError, match="FAILED: BackfillFailed: item 3"):
        follow(FakeSfn(["RUNNING", "FAILED"]), "exec", sleep=lambda _: None)


def test_execution_input_is_the_documented_one() -> None:
    assert execution_input(total_segments=8, rate=500.0) == {
        "rebuild": False,
        "verify": False,
        "total_segments": 8,
        "rate": 500.0,
    }
    moment = datetime(2026, 1, 1, tzinfo=UTC).timestamp()
    assert execution_input(export_arn="arn:x", export_time=moment, rebuild=True, projections=["orders"]) == {
        "rebuild": True,
        "verify": False,
        "export_arn": "arn:x",
        "export_time": moment,
        "projections": ["orders"],
    }
    assert gzip.decompress(gz_lines(["a"])) == b"a\n"


def test_an_events_table_export_checks_both_key_attributes(aws: Any) -> None:
    s3, _ = aws
    event = {"stream_id": {"S": "order-1"}, "version": {"N": "2"}, "type": {"S": "OrderPaid"}}
    s3.put_object(Bucket="exports", Key="e/data/ok.gz", Body=gz_lines([json.dumps({"Item": event})]))
    verified = verify_file(s3, "exports", DataFile(dataFileS3Key="e/data/ok.gz"), ("stream_id", "version"))
    assert [item["version"] for item in verified.items()] == [{"N": "2"}]
    del event["version"]
    s3.put_object(Bucket="exports", Key="e/data/bad.gz", Body=gz_lines([json.dumps({"Item": event})]))
    with pytest.raises(ExportError, match=r"line 1 has no key attribute \['version'\]"):
        verify_file(s3, "exports", DataFile(dataFileS3Key="e/data/bad.gz"), ("stream_id", "version"))


class FakeExports:
    """DescribeExport answers in turn (the last one repeats)."""

    def __init__(self, *statuses: str) -> None:
        self.statuses = list(statuses)

    def describe_export(self, ExportArn: str) -> dict[str, Any]:
        status = self.statuses.pop(0) if len(self.statuses) > 1 else self.statuses[0]
        return {"ExportDescription": {"ExportArn": ExportArn, "ExportStatus": status}}


def test_a_running_export_is_waited_for_or_refused_by_name() -> None:
    with pytest.raises(ExportError, match="export arn:e is IN_PROGRESS, not COMPLETED"):
        resolve(FakeExports("IN_PROGRESS"), None, table="orders", region="us-east-1", export_arn="arn:e")
    with pytest.raises(ExportError, match=r"export arn:e is still IN_PROGRESS after 0\.2 s"):
        wait(FakeExports("IN_PROGRESS"), "arn:e", timeout_s=0.2, poll_s=0.05)
    assert wait(FakeExports("IN_PROGRESS", "COMPLETED"), "arn:e", 5, 0.01)["ExportStatus"] == "COMPLETED"


def test_on_aws_starts_the_documented_input_and_prints_the_end(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("PROJECTOR_BACKFILL_STATE_MACHINE", raising=False)
    from projector.cli.commands._on_aws import run_on_aws
    from projector.cli.output import CommandError

    class Started(FakeSfn):
        def __init__(self, statuses: list[str]) -> None:
            super().__init__(statuses)
            self.inputs: list[dict[str, Any]] = []

        def start_execution(self, stateMachineArn: str, name: str, input: str) -> dict[str, Any]:
            self.inputs.append(json.loads(input))
            return {"executionArn": f"{stateMachineArn}:{name}"}

    fake = Started(["RUNNING", "SUCCEEDED"])
    options: dict[str, Any] = {
        "segments": 16,
        "rate": 100.0,
        "rebuild": True,
        "from_export": None,
        "export_arn": None,
        "export_time": None,
        "projections": ("orders",),
        "progress": False,
        "as_json": True,
        "poll_s": 0.0,
    }
    run_on_aws(state_machine="arn:sm", client=fake, **options)
    printed = json.loads(capsys.readouterr().out)
    assert fake.inputs == [
        {"rebuild": True, "verify": False, "total_segments": 16, "projections": ["orders"], "rate": 100.0}
    ]
    assert printed["status"] == "SUCCEEDED" and printed["execution_arn"].startswith("arn:sm:backfill-")
    with pytest.raises(CommandError, match="FAILED") as failed:
        run_on_aws(state_machine="arn:sm", client=Started(["FAILED"]), **options)
    assert failed.value.exit_code == 1
    with pytest.raises(CommandError, match="PROJECTOR_BACKFILL_STATE_MACHINE"):
        run_on_aws(state_machine=None, client=fake, **options)
