"""`projector run` against the moto server's DynamoDB Streams: event shape, order, batch size,
batchItemFailures, dead letters, checkpoints across kill -9, and a clean SIGTERM."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from projector.clients import dynamodb_client, streams_client
from projector.config import Settings
from projector.deadletters import open_store
from projector.runner import Runner, RunnerOptions
from tests.support.polling import wait_until

pytestmark = pytest.mark.integration

ENDPOINT = os.environ.get("PROJECTOR_DYNAMODB_ENDPOINT") or "http://127.0.0.1:5000"
REPO = Path(__file__).resolve().parents[2]
FAST = {"poll_interval_s": 0.05, "backoff_initial_s": 0.01, "backoff_max_s": 0.05, "discover_interval_s": 1.0}

#: A handler for subprocess runs: appends each delivered sequence number to $RUNNER_TEST_OUT.
SEQ_HANDLER = textwrap.dedent("""
    import os, time

    def handler(event, context):
        time.sleep(float(os.environ.get("RUNNER_TEST_DELAY", "0")))
        with open(os.environ["RUNNER_TEST_OUT"], "a") as out:
            for record in event["Records"]:
                out.write(record["dynamodb"]["SequenceNumber"] + "\\n")
            out.flush()
            os.fsync(out.fileno())
        return {"batchItemFailures": []}
""")


# ---------------------------------------------------------------- fixtures and helpers


@pytest.fixture(scope="module")
def moto_settings() -> Settings:
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
    settings = Settings(dynamodb_endpoint=ENDPOINT)
    try:
        dynamodb_client(settings).list_tables(Limit=1)
    except Exception:
        services = REPO / "scripts" / "services"
        if services.exists():
            subprocess.run(
                [sys.executable, str(services), "start", "--only", "moto"], check=False, timeout=120
            )
        try:
            dynamodb_client(settings).list_tables(Limit=1)
        except Exception as error:  # pragma: no cover - environment problem, not a test result
            pytest.fail(f"no DynamoDB at {ENDPOINT} ({error}); run scripts/services start --only moto")
    return settings


@pytest.fixture
def table(moto_settings: Settings) -> Iterator[str]:
    name = f"runner-{uuid.uuid4().hex[:10]}"
    client = dynamodb_client(moto_settings)
    client.create_table(
        TableName=name,
        KeySchema=[{"AttributeName": "order_id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "order_id", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
        StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"},
    )
    yield name
    client.delete_table(TableName=name)


@pytest.fixture
def settings(moto_settings: Settings, table: str, tmp_path: Path) -> Settings:
    return moto_settings.model_copy(
        update={
            "source_table": table,
            "state_dir": str(tmp_path / "state"),
            "dead_letters": f"file://{tmp_path / 'dead-letters'}",
        }
    )


def put_orders(settings: Settings, count: int, start: int = 0) -> None:
    client = dynamodb_client(settings)
    for index in range(start, start + count):
        client.put_item(
            TableName=settings.source_table,
            Item={
                "order_id": {"S": f"o-{index:04d}"},
                "status": {"S": "PENDING"},
                "version": {"N": "1"},
            },
        )


def stream_numbers(settings: Settings) -> list[str]:
    """Every sequence number on the table's stream, read directly (the truth to compare against)."""
    streams = streams_client(settings)
    arn = dynamodb_client(settings).describe_table(TableName=settings.source_table)["Table"][
        "LatestStreamArn"
    ]
    numbers: list[str] = []
    for shard in streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"]:
        iterator = streams.get_shard_iterator(
            StreamArn=arn, ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON"
        )["ShardIterator"]
        while iterator:
            page = streams.get_records(ShardIterator=iterator, Limit=1000)
            numbers += [record["dynamodb"]["SequenceNumber"] for record in page["Records"]]
            iterator = page.get("NextShardIterator") if page["Records"] else None
    return numbers


class Recorder:
    """An injected handler: keeps every event; ``decide(records)`` answers (default: all applied)."""

    def __init__(self, decide: Callable[[list[dict[str, Any]]], Any] | None = None) -> None:
        self.events: list[dict[str, Any]] = []
        self.decide = decide or (lambda records: {"batchItemFailures": []})

    def __call__(self, event: dict[str, Any], context: Any) -> Any:
        assert context.get_remaining_time_in_millis() > 0 and context.aws_request_id
        self.events.append(json.loads(json.dumps(event)))  # what went over the wire must be JSON
        return self.decide(event["Records"])

    @property
    def numbers(self) -> list[str]:
        return [record["dynamodb"]["SequenceNumber"] for event in self.events for record in event["Records"]]


def run(settings: Settings, handler: Recorder, **options: Any) -> Runner:
    runner = Runner(
        handler, settings=settings, options=RunnerOptions(**{**FAST, "until_idle_s": 1.0, **options})
    )
    runner.run()
    return runner


def checkpoint_of(settings: Settings) -> str | None:
    path = Path(settings.state_dir) / "checkpoints" / f"{settings.source_table}.json"
    document = json.loads(path.read_text())
    [stream] = document["streams"].values()
    [shard] = stream["shards"].values()
    return shard["sequence_number"]


def projector_run(
    settings: Settings, tmp_path: Path, out: Path, *args: str, delay: float = 0.0, **popen: Any
) -> subprocess.Popen[str]:
    (tmp_path / "seq_handler.py").write_text(SEQ_HANDLER)
    env = {
        **os.environ,
        "PROJECTOR_SOURCE_TABLE": settings.source_table,
        "PROJECTOR_STATE_DIR": settings.state_dir,
        "PROJECTOR_DEAD_LETTERS": settings.dead_letters,
        "PROJECTOR_DYNAMODB_ENDPOINT": ENDPOINT,
        "RUNNER_TEST_OUT": str(out),
        "RUNNER_TEST_DELAY": str(delay),
        "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
    }
    command = [sys.executable, "-m", "projector.cli.main", "run", "--handler", "seq_handler:handler", *args]
    return subprocess.Popen(
        command, cwd=tmp_path, env=env, text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE, **popen
    )


def lines(path: Path) -> list[str]:
    return path.read_text().split() if path.exists() else []


# ---------------------------------------------------------------- tests


def test_records_arrive_lambda_shaped_in_order_respecting_the_batch_size(settings: Settings) -> None:
    put_orders(settings, 7)
    client = dynamodb_client(settings)
    client.update_item(
        TableName=settings.source_table,
        Key={"order_id": {"S": "o-0001"}},
        UpdateExpression="SET #s = :s",
        ExpressionAttributeNames={"#s": "status"},
        ExpressionAttributeValues={":s": {"S": "PAID"}},
    )
    client.delete_item(TableName=settings.source_table, Key={"order_id": {"S": "o-0002"}})
    handler = Recorder()
    started = time.time()

    runner = run(settings, handler, batch_size=3)

    assert handler.numbers == stream_numbers(settings)
    assert [len(event["Records"]) for event in handler.events] == [3, 3, 3]
    records = [record for event in handler.events for record in event["Records"]]
    assert [record["eventName"] for record in records] == ["INSERT"] * 7 + ["MODIFY", "REMOVE"]
    arn = client.describe_table(TableName=settings.source_table)["Table"]["LatestStreamArn"]
    assert all(set(event) == {"Records"} for event in handler.events)
    for record in records:
        assert record["eventSourceARN"] == arn == runner.stream_arn
        assert record["awsRegion"] == settings.region
        assert record["eventSource"] == "aws:dynamodb"
        created = record["dynamodb"]["ApproximateCreationDateTime"]
        assert isinstance(created, int | float) and started - 60 < created < time.time() + 1
    assert records[7]["dynamodb"]["OldImage"]["status"] == {"S": "PENDING"}
    assert records[7]["dynamodb"]["NewImage"]["status"] == {"S": "PAID"}
    assert checkpoint_of(settings) == handler.numbers[-1]


def test_a_reported_failure_is_resent_from_exactly_that_record(settings: Settings) -> None:
    put_orders(settings, 6)
    failed: list[str] = []

    def decide(records: list[dict[str, Any]]) -> dict[str, Any]:
        if not failed and len(records) > 3:
            failed.append(records[3]["dynamodb"]["SequenceNumber"])
            return {"batchItemFailures": [{"itemIdentifier": failed[0]}]}
        return {"batchItemFailures": []}

    handler = Recorder(decide)
    run(settings, handler, batch_size=10)

    truth = stream_numbers(settings)
    assert [len(event["Records"]) for event in handler.events] == [6, 3]
    assert handler.events[1]["Records"][0]["dynamodb"]["SequenceNumber"] == failed[0] == truth[3]
    assert handler.numbers == truth + truth[3:]
    assert checkpoint_of(settings) == truth[-1]


def test_a_record_that_always_fails_goes_whole_to_the_dead_letters(settings: Settings) -> None:
    put_orders(settings, 5)
    poison = "o-0002"

    def decide(records: list[dict[str, Any]]) -> dict[str, Any]:
        bad = [r for r in records if r["dynamodb"]["Keys"]["order_id"]["S"] == poison]
        return {"batchItemFailures": [{"itemIdentifier": r["dynamodb"]["SequenceNumber"]} for r in bad]}

    handler = Recorder(decide)
    run(settings, handler, batch_size=2, max_retries=2)

    truth = stream_numbers(settings)
    [letter] = list(open_store(settings).list())
    assert letter.reason == "retries_exhausted"
    assert letter.sequence_number == truth[2]
    assert letter.record["dynamodb"]["Keys"] == {"order_id": {"S": poison}}
    assert letter.record["dynamodb"]["NewImage"]["status"] == {"S": "PENDING"}
    assert letter.record["eventSourceARN"] == letter.event_source_arn
    assert handler.numbers.count(truth[2]) == 3  # the first try and 2 retries
    assert set(truth[3:]) <= set(handler.numbers)  # the shard moved on
    assert checkpoint_of(settings) == truth[-1]


def test_a_raising_handler_has_its_whole_batch_retried(settings: Settings) -> None:
    put_orders(settings, 4)
    calls: list[int] = []

    def decide(records: list[dict[str, Any]]) -> Any:
        calls.append(len(records))
        if len(calls) == 1:
            raise RuntimeError("OpenSearch unreachable")
        return None

    handler = Recorder(decide)
    run(settings, handler, batch_size=10)
    assert calls == [4, 4]
    assert handler.numbers == stream_numbers(settings) * 2
    assert list(open_store(settings).list()) == []


def test_kill_9_then_restart_skips_no_record(settings: Settings, tmp_path: Path) -> None:
    put_orders(settings, 60)
    first, second = tmp_path / "first.txt", tmp_path / "second.txt"
    process = projector_run(settings, tmp_path, first, "--batch-size", "5", delay=0.05)
    try:
        wait_until(lambda: len(lines(first)) >= 20, what="20 lines of output")
    finally:
        process.kill()  # SIGKILL: no clean-up of any kind
        process.communicate(timeout=10)
    assert process.returncode == -signal.SIGKILL
    checkpoint = checkpoint_of(settings)  # the file is whole, whatever the moment of the kill
    put_orders(settings, 10, start=60)

    process = projector_run(settings, tmp_path, second, "--batch-size", "5", "--until-idle", "1.5")
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 0, stderr

    truth = stream_numbers(settings)
    assert len(truth) == 70
    seen = lines(first) + lines(second)
    assert set(truth) <= set(seen), "a record was skipped"
    assert lines(second)[0] == truth[truth.index(checkpoint) + 1]  # resumed right after the checkpoint
    assert checkpoint_of(settings) == truth[-1]


def test_sigterm_stops_cleanly_with_the_checkpoint_at_the_last_applied_batch(
    settings: Settings, tmp_path: Path
) -> None:
    put_orders(settings, 40)
    out = tmp_path / "out.txt"
    process = projector_run(settings, tmp_path, out, "--batch-size", "4", delay=0.1)
    wait_until(lambda: len(lines(out)) >= 8, what="8 lines of output")
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=30)

    assert process.returncode == 0, stderr
    applied = lines(out)
    assert len(applied) < 40, "it should have stopped before the end"
    assert checkpoint_of(settings) == applied[-1]
    status = [line for line in stderr.splitlines() if "records=" in line]
    assert len(status) == len(applied) // 4
    assert "SIGTERM received" in stderr


def test_json_prints_one_object_per_batch(settings: Settings, tmp_path: Path) -> None:
    put_orders(settings, 7)
    out = tmp_path / "out.txt"
    process = projector_run(settings, tmp_path, out, "--batch-size", "3", "--max-batches", "2", "--json")
    stdout, stderr = process.communicate(timeout=60)

    assert process.returncode == 0, stderr
    reports = [json.loads(line) for line in stdout.splitlines()]
    truth = stream_numbers(settings)
    assert [
        (r["outcome"], r["records"], r["first_sequence_number"], r["last_sequence_number"]) for r in reports
    ] == [("ok", 3, truth[0], truth[2]), ("ok", 3, truth[3], truth[5])]
    assert all(r["failures"] == 0 and r["lag_s"] >= 0 and r["duration_ms"] >= 0 for r in reports)
    assert lines(out) == truth[:6]


def test_a_table_without_a_stream_is_one_clear_error(moto_settings: Settings, tmp_path: Path) -> None:
    name = f"runner-plain-{uuid.uuid4().hex[:8]}"
    client = dynamodb_client(moto_settings)
    client.create_table(
        TableName=name,
        KeySchema=[{"AttributeName": "k", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "k", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    try:
        settings = moto_settings.model_copy(update={"source_table": name, "state_dir": str(tmp_path)})
        process = projector_run(settings, tmp_path, tmp_path / "out.txt")
        _, stderr = process.communicate(timeout=60)
    finally:
        client.delete_table(TableName=name)
    assert process.returncode == 2
    assert stderr.strip().splitlines()[-1].startswith(f"error: table '{name}' has no stream")
