"""Our moto launcher removes moto's two hazards: requests are serialised (no lost write, no HTTP 500
under concurrent clients) and a cancelled TransactWriteItems is all-or-nothing, stream included,
through a per-item journal instead of whole-table copies."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import threading
import time
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from devservers import process
from devservers.moto import health
from tests.support.polling import wait_until

REPO_ROOT = Path(__file__).resolve().parents[2]
NO_RETRY = Config(retries={"max_attempts": 1, "mode": "standard"}, max_pool_connections=16)


def _client(endpoint: str, service: str = "dynamodb") -> Any:
    """A client that surfaces every HTTP 500 instead of retrying it away."""
    return boto3.client(
        service,
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        config=NO_RETRY,
    )


@pytest.fixture
def table(moto_server: str) -> Iterator[dict[str, Any]]:
    """A fresh hash-key table with a NEW_AND_OLD_IMAGES stream."""
    yield from _table(moto_server, range_key=False)


@pytest.fixture
def range_table(moto_server: str) -> Iterator[dict[str, Any]]:
    """A fresh hash+range table with a stream."""
    yield from _table(moto_server, range_key=True)


def _table(endpoint: str, range_key: bool) -> Iterator[dict[str, Any]]:
    client = _client(endpoint)
    name = f"launcher-{uuid.uuid4().hex[:10]}"
    schema = [{"AttributeName": "pk", "KeyType": "HASH"}]
    attributes = [{"AttributeName": "pk", "AttributeType": "S"}]
    if range_key:
        schema.append({"AttributeName": "sk", "KeyType": "RANGE"})
        attributes.append({"AttributeName": "sk", "AttributeType": "S"})
    arn = client.create_table(
        TableName=name,
        KeySchema=schema,
        AttributeDefinitions=attributes,
        BillingMode="PAY_PER_REQUEST",
        StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"},
    )["TableDescription"]["LatestStreamArn"]
    yield {"name": name, "client": client, "stream": arn, "endpoint": endpoint, "range": range_key}
    client.delete_table(TableName=name)


def _key(table: dict[str, Any], pk: str) -> dict[str, Any]:
    key = {"pk": {"S": pk}}
    if table["range"]:
        key["sk"] = {"S": "r"}
    return key


def test_add_keeps_dynamodbs_38_digits(table: dict[str, Any]) -> None:
    """DynamoDB adds with 38 significant digits; stock moto rounds at Python's default 28, which would
    make two orders summing to 123456789012345678901234567.75 (29 digits) come out ...567.8."""
    client = table["client"]
    for amount in ("123456789012345678901234567.5", "0.25"):
        client.update_item(
            TableName=table["name"],
            Key=_key(table, "sum"),
            UpdateExpression="ADD amount :a",
            ExpressionAttributeValues={":a": {"N": amount}},
        )
    stored = _items(table)["sum"]["amount"]["N"]
    assert stored == "123456789012345678901234567.75"


def _items(table: dict[str, Any]) -> dict[str, dict[str, Any]]:
    client, items, start = table["client"], {}, None
    while True:
        page = client.scan(TableName=table["name"], ConsistentRead=True, **start or {})
        for item in page["Items"]:
            items[item["pk"]["S"]] = item
        if "LastEvaluatedKey" not in page:
            return items
        start = {"ExclusiveStartKey": page["LastEvaluatedKey"]}


def _stream(table: dict[str, Any]) -> list[dict[str, Any]]:
    streams = _client(table["endpoint"], "dynamodbstreams")
    shard = streams.describe_stream(StreamArn=table["stream"])["StreamDescription"]["Shards"][0]
    iterator = streams.get_shard_iterator(
        StreamArn=table["stream"], ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON"
    )["ShardIterator"]
    records: list[dict[str, Any]] = []
    while iterator:
        page = streams.get_records(ShardIterator=iterator, Limit=1000)
        records.extend(page["Records"])
        if not page["Records"]:
            break
        iterator = page.get("NextShardIterator")
    return records


def _put(table: dict[str, Any], pk: str, version: int) -> None:
    item = {**_key(table, pk), "version": {"N": str(version)}, "note": {"S": f"{pk}@{version}"}}
    table["client"].put_item(TableName=table["name"], Item=item)


def _stale_transaction(table: dict[str, Any], victims: list[str], missing: str) -> list[dict[str, Any]]:
    """Put a new item, update and delete existing ones, then fail on a stale version condition."""
    name = table["name"]
    return [
        {"Put": {"TableName": name, "Item": {**_key(table, f"new-{uuid.uuid4().hex[:6]}"), "v": {"N": "1"}}}},
        {
            "Update": {
                "TableName": name,
                "Key": _key(table, victims[0]),
                "UpdateExpression": "SET version = version + :one, note = :n",
                "ExpressionAttributeValues": {":one": {"N": "1"}, ":n": {"S": "changed"}},
            }
        },
        {"Delete": {"TableName": name, "Key": _key(table, victims[1])}},
        {
            "Put": {
                "TableName": name,
                "Item": {**_key(table, missing), "version": {"N": "9"}},
                "ConditionExpression": "version = :stale",
                "ExpressionAttributeValues": {":stale": {"N": "0"}},
            }
        },
    ]


def test_the_server_on_5000_is_our_launcher(moto_server: str) -> None:
    info = health()
    assert info is not None, "port 5000 does not answer as devservers.moto_launcher"
    assert info["serialised"] is True and info["transaction_journal"] is True


@pytest.mark.parametrize("kind", ["hash", "hash_range"])
def test_cancelled_transaction_leaves_nothing_applied(
    kind: str, table: dict[str, Any], range_table: dict[str, Any]
) -> None:
    target = table if kind == "hash" else range_table
    for pk in ("a", "b", "c"):
        _put(target, pk, 1)
    items_before, stream_before = _items(target), _stream(target)
    assert len(stream_before) == 3

    with pytest.raises(ClientError) as caught:
        target["client"].transact_write_items(TransactItems=_stale_transaction(target, ["a", "b"], "c"))
    error = caught.value.response
    assert error["Error"]["Code"] == "TransactionCanceledException"
    reasons = [reason["Code"] for reason in error["CancellationReasons"]]
    assert reasons == ["None", "None", "None", "ConditionalCheckFailed"]

    assert _items(target) == items_before
    stream_after = _stream(target)
    assert [r["dynamodb"]["SequenceNumber"] for r in stream_after] == [
        r["dynamodb"]["SequenceNumber"] for r in stream_before
    ]
    assert [r["eventID"] for r in stream_after] == [r["eventID"] for r in stream_before]

    # The next write continues the stream right after the last committed record.
    _put(target, "d", 1)
    stream_next = _stream(target)
    assert len(stream_next) == 4 and stream_next[-1]["eventName"] == "INSERT"
    assert int(stream_next[-1]["dynamodb"]["SequenceNumber"]) > int(
        stream_before[-1]["dynamodb"]["SequenceNumber"]
    )


def test_transaction_on_a_missing_table_is_cancelled_whole(table: dict[str, Any]) -> None:
    _put(table, "a", 1)
    before_items, before_stream = _items(table), _stream(table)
    actions = [
        {"Put": {"TableName": table["name"], "Item": {**_key(table, "x"), "v": {"N": "1"}}}},
        {"Put": {"TableName": f"missing-{uuid.uuid4().hex[:6]}", "Item": {"pk": {"S": "y"}}}},
    ]
    with pytest.raises(ClientError) as caught:
        table["client"].transact_write_items(TransactItems=actions)
    assert caught.value.response["Error"]["Code"] in {
        "TransactionCanceledException",
        "ResourceNotFoundException",
    }
    assert _items(table) == before_items and len(_stream(table)) == len(before_stream)


def test_transaction_touching_one_item_twice_is_rejected_whole(table: dict[str, Any]) -> None:
    _put(table, "a", 1)
    before_items, before_stream = _items(table), _stream(table)
    name = table["name"]
    actions = [
        {"Put": {"TableName": name, "Item": {**_key(table, "x"), "v": {"N": "1"}}}},
        {"Delete": {"TableName": name, "Key": _key(table, "a")}},
        {"Delete": {"TableName": name, "Key": _key(table, "a")}},
    ]
    with pytest.raises(ClientError) as caught:
        table["client"].transact_write_items(TransactItems=actions)
    assert caught.value.response["Error"]["Code"] == "ValidationException"
    assert _items(table) == before_items and len(_stream(table)) == len(before_stream)


def test_successful_transaction_appends_its_stream_records(table: dict[str, Any]) -> None:
    _put(table, "a", 1)
    _put(table, "b", 1)
    name = table["name"]
    table["client"].transact_write_items(
        TransactItems=[
            {"Put": {"TableName": name, "Item": {**_key(table, "n"), "version": {"N": "1"}}}},
            {
                "Update": {
                    "TableName": name,
                    "Key": _key(table, "a"),
                    "UpdateExpression": "SET version = version + :one",
                    "ConditionExpression": "version = :v",
                    "ExpressionAttributeValues": {":one": {"N": "1"}, ":v": {"N": "1"}},
                }
            },
            {"Delete": {"TableName": name, "Key": _key(table, "b")}},
            {"Put": {"TableName": name, "Item": {**_key(table, "m"), "version": {"N": "1"}}}},
        ]
    )
    records = _stream(table)
    assert [r["eventName"] for r in records] == ["INSERT", "INSERT", "INSERT", "MODIFY", "REMOVE", "INSERT"]
    assert records[3]["dynamodb"]["NewImage"]["version"] == {"N": "2"}
    assert records[4]["dynamodb"]["Keys"] == _key(table, "b")
    assert set(_items(table)) == {"a", "n", "m"}


def test_concurrent_clients_lose_no_write_and_get_no_500(table: dict[str, Any]) -> None:
    victims = [f"victim-{i}" for i in range(20)]
    for pk in victims:
        _put(table, pk, 1)
    writers, puts_each = 4, 75
    acknowledged: list[str] = []
    failures: list[str] = []
    cancelled = 0
    stop = threading.Event()
    lock = threading.Lock()

    def cancel_forever() -> None:
        nonlocal cancelled
        client = _client(table["endpoint"])
        local = {**table, "client": client}
        round_ = 0
        while not stop.is_set():
            pair = [victims[round_ % 20], victims[(round_ + 7) % 20]]
            round_ += 1
            try:
                client.transact_write_items(
                    TransactItems=_stale_transaction(local, pair, victims[(round_ + 3) % 20])
                )
                failures.append("a stale transaction succeeded")
            except ClientError as error:
                code = error.response["Error"]["Code"]
                status = error.response["ResponseMetadata"]["HTTPStatusCode"]
                if code != "TransactionCanceledException" or status >= 500:
                    failures.append(f"transaction: {code} HTTP {status}")
                else:
                    with lock:
                        cancelled += 1

    def put_many(writer: int) -> None:
        client = _client(table["endpoint"])
        for n in range(puts_each):
            pk = f"w{writer}-{n}"
            try:
                client.put_item(
                    TableName=table["name"],
                    Item={**_key(table, pk), "version": {"N": "1"}, "note": {"S": pk}},
                )
            except ClientError as error:
                failures.append(f"put {pk}: {error.response['Error']['Code']}")
                continue
            with lock:
                acknowledged.append(pk)

    canceller = threading.Thread(target=cancel_forever)
    putters = [threading.Thread(target=put_many, args=(w,)) for w in range(writers)]
    canceller.start()
    for thread in putters:
        thread.start()
    for thread in putters:
        thread.join(timeout=120)
    stop.set()
    canceller.join(timeout=60)

    assert not failures, failures[:5]
    assert len(acknowledged) == writers * puts_each
    assert cancelled > 0
    items = _items(table)
    lost = [pk for pk in acknowledged if pk not in items]
    assert not lost, f"{len(lost)} acknowledged puts lost: {lost[:5]}"
    for pk in victims:
        assert items[pk]["version"] == {"N": "1"} and items[pk]["note"] == {"S": f"{pk}@1"}
    assert not [pk for pk in items if pk.startswith("new-")]

    records = _stream(table)
    assert len(records) == len(victims) + writers * puts_each
    assert all(r["eventName"] == "INSERT" for r in records)
    sequence = [int(r["dynamodb"]["SequenceNumber"]) for r in records]
    assert sequence == sorted(sequence) and len(set(sequence)) == len(sequence)


# ---------------------------------------------------------------- a private launcher (reset, bind, stop)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def private_launcher(tmp_path: Path) -> Iterator[tuple[int, subprocess.Popen[bytes]]]:
    """Our launcher on a free loopback port, for what must not touch the shared server (reset)."""
    port = _free_port()
    log = (tmp_path / "launcher.log").open("wb")
    child = subprocess.Popen(
        [sys.executable, "-m", "devservers.moto_launcher", "--host", "127.0.0.1", "--port", str(port)],
        cwd=REPO_ROOT,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:

        def answers() -> bool:
            assert child.poll() is None, (tmp_path / "launcher.log").read_text()
            return health(port) is not None

        wait_until(answers, 30, 0.1, "the private launcher to answer")
        yield port, child
    finally:
        if child.poll() is None:
            child.kill()
        child.wait(timeout=10)
        log.close()


def test_private_launcher_binds_loopback_resets_and_stops_fast(
    private_launcher: tuple[int, subprocess.Popen[bytes]],
) -> None:
    port, child = private_launcher
    bound = process.listeners_on(port)
    if bound and bound[0].pids:
        assert {item.address for item in bound} == {"127.0.0.1"}
        assert child.pid in {pid for item in bound for pid in item.pids}

    endpoint = f"http://127.0.0.1:{port}"
    client = _client(endpoint)
    client.create_table(
        TableName="to-be-reset",
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    assert client.list_tables()["TableNames"] == ["to-be-reset"]
    request = urllib.request.Request(f"{endpoint}/moto-api/reset", method="POST", data=b"")
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 200
    assert client.list_tables()["TableNames"] == []
    info = health(port)
    assert info is not None and info["transaction_journal"] is True  # the patch survives a reset
    assert json.loads(json.dumps(info))["launcher"] == "devservers.moto_launcher"

    started = time.monotonic()
    child.terminate()
    child.wait(timeout=10)
    assert time.monotonic() - started < 5
    assert not process.port_open(port)


def test_update_that_creates_an_item_records_one_insert(
    private_launcher: tuple[int, subprocess.Popen[bytes]],
) -> None:
    port, _ = private_launcher
    endpoint = f"http://127.0.0.1:{port}"
    table = next(_table(endpoint, range_key=False))  # the private server (and table) go with the test
    name = table["name"]
    table["client"].update_item(
        TableName=name,
        Key=_key(table, "u1"),
        UpdateExpression="SET version = :one",
        ExpressionAttributeValues={":one": {"N": "1"}},
    )
    table["client"].transact_write_items(
        TransactItems=[
            {
                "Update": {
                    "TableName": name,
                    "Key": _key(table, "u2"),
                    "UpdateExpression": "SET version = :one",
                    "ExpressionAttributeValues": {":one": {"N": "1"}},
                }
            }
        ]
    )
    _put(table, "p1", 1)
    records = _stream(table)
    assert [r["eventName"] for r in records] == ["INSERT", "INSERT", "INSERT"]
    assert [r["dynamodb"]["Keys"]["pk"]["S"] for r in records] == ["u1", "u2", "p1"]
    assert all(r["dynamodb"]["NewImage"]["version"] == {"N": "1"} for r in records)
    sequence = [int(r["dynamodb"]["SequenceNumber"]) for r in records]
    assert sequence == sorted(sequence) and sequence[2] - sequence[0] == 2
