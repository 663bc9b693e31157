"""The local servers the suite relies on: real OpenSearch, moto's DynamoDB + Streams, the
`scripts/services` report, and nothing of ours listening beyond 127.0.0.1."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from devservers import paths, process
from devservers.moto import Moto
from devservers.moto_launcher import HEALTH_PATH
from devservers.process import ServiceError
from devservers.rie import running_rie
from devservers.toxiproxy import start_toxiproxy
from tests.support.polling import wait_until

REPO_ROOT = Path(__file__).resolve().parents[2]
LOOPBACK = {"127.0.0.1", "::ffff:127.0.0.1"}


def test_opensearch_indexes_and_searches(opensearch: Any, settings_env: Any) -> None:
    index = f"{settings_env.index_prefix}smoke"
    opensearch.indices.create(
        index=index,
        body={"mappings": {"properties": {"title": {"type": "text"}, "sku": {"type": "keyword"}}}},
    )
    opensearch.index(index=index, id="a1", body={"title": "blue kettle", "sku": "K-1"}, refresh=True)
    opensearch.index(index=index, id="a2", body={"title": "red lamp", "sku": "L-2"}, refresh=True)

    assert opensearch.get(index=index, id="a1")["_source"]["sku"] == "K-1"
    hits = opensearch.search(index=index, body={"query": {"match": {"title": "kettle"}}})["hits"]
    assert [hit["_id"] for hit in hits["hits"]] == ["a1"]
    version = opensearch.info()["version"]
    assert version["distribution"] == "opensearch"
    assert version["number"] == "2.19.6"


def test_settings_env_isolates_each_test(settings_env: Any, tmp_path: Path) -> None:
    assert os.environ["PROJECTOR_INDEX_PREFIX"] == settings_env.index_prefix
    assert settings_env.index_prefix.startswith("t") and settings_env.index_prefix.endswith("-")
    assert settings_env.index_prefix == settings_env.index_prefix.lower()
    assert os.environ["PROJECTOR_SOURCE_TABLE"] == settings_env.source_table
    assert os.environ["PROJECTOR_AGGREGATES_TABLE"] == settings_env.aggregates_table
    assert os.environ["PROJECTOR_DEAD_LETTERS"] == f"file://{tmp_path}/dead-letters"
    assert os.environ["PROJECTOR_STATE_DIR"] == str(tmp_path / "state")
    assert os.environ["PROJECTOR_OPENSEARCH_URL"] == "http://127.0.0.1:9200"
    assert os.environ["PROJECTOR_DYNAMODB_ENDPOINT"] == "http://127.0.0.1:5000"
    assert os.environ["AWS_REGION"] == "us-east-1"
    assert os.environ["AWS_ACCESS_KEY_ID"] == "testing"


def _create_stream_table(dynamodb: Any, name: str) -> str:
    description = dynamodb.create_table(
        TableName=name,
        KeySchema=[{"AttributeName": "order_id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "order_id", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
        StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"},
    )["TableDescription"]
    return description["LatestStreamArn"]


def _read_stream(dynamodbstreams: Any, stream_arn: str) -> list[dict[str, Any]]:
    shards = dynamodbstreams.describe_stream(StreamArn=stream_arn)["StreamDescription"]["Shards"]
    assert len(shards) == 1
    iterator = dynamodbstreams.get_shard_iterator(
        StreamArn=stream_arn, ShardId=shards[0]["ShardId"], ShardIteratorType="TRIM_HORIZON"
    )["ShardIterator"]
    return dynamodbstreams.get_records(ShardIterator=iterator, Limit=1000)["Records"]


def test_moto_table_stream_reports_insert_modify_remove(
    dynamodb: Any, dynamodbstreams: Any, settings_env: Any
) -> None:
    table = settings_env.source_table
    stream_arn = _create_stream_table(dynamodb, table)
    key = {"order_id": {"S": "o-1"}}
    dynamodb.put_item(TableName=table, Item={**key, "status": {"S": "PENDING"}, "version": {"N": "1"}})
    dynamodb.update_item(
        TableName=table,
        Key=key,
        UpdateExpression="SET #s = :paid, version = version + :one",
        ConditionExpression="version = :v1",
        ExpressionAttributeNames={"#s": "status"},
        ExpressionAttributeValues={":paid": {"S": "PAID"}, ":one": {"N": "1"}, ":v1": {"N": "1"}},
    )
    dynamodb.delete_item(TableName=table, Key=key)

    records = _read_stream(dynamodbstreams, stream_arn)
    assert [record["eventName"] for record in records] == ["INSERT", "MODIFY", "REMOVE"]
    insert, modify, remove = (record["dynamodb"] for record in records)
    assert all(change["Keys"] == key for change in (insert, modify, remove))
    assert "OldImage" not in insert and insert["NewImage"]["status"] == {"S": "PENDING"}
    assert modify["OldImage"]["status"] == {"S": "PENDING"}
    assert modify["NewImage"]["status"] == {"S": "PAID"} and modify["NewImage"]["version"] == {"N": "2"}
    assert remove["OldImage"]["version"] == {"N": "2"} and "NewImage" not in remove
    sequence = [int(change["SequenceNumber"]) for change in (insert, modify, remove)]
    assert sequence == sorted(sequence) and len(set(sequence)) == 3


def _services(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(REPO_ROOT / "scripts" / "services"), *args],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO_ROOT,
        check=False,
    )


def test_services_status_prints_each_endpoint(local_servers: dict[str, str]) -> None:
    result = _services("status")
    assert result.returncode == 0, result.stderr
    lines = {line.split()[0]: line for line in result.stdout.splitlines() if line.strip()}
    assert set(lines) >= {"opensearch", "moto", "rie", "toxiproxy"}
    for name, url in local_servers.items():
        fields = lines[name].split()
        assert fields[1] == url and fields[2] == "up"
        assert fields[3] == "pid"
    assert lines["opensearch"].split()[1] == "http://127.0.0.1:9200"
    assert lines["moto"].split()[1] == "http://127.0.0.1:5000"


def test_services_start_is_idempotent(local_servers: dict[str, str]) -> None:
    before = {listener.port: listener.pids for listener in process.listeners()}
    result = _services("start")
    assert result.returncode == 0, result.stderr
    for name in ("opensearch", "moto"):
        line = next(line for line in result.stdout.splitlines() if line.startswith(name))
        assert " up " in line and "(started)" not in line
    after = {listener.port: listener.pids for listener in process.listeners()}
    assert after.get(9200) == before.get(9200) and after.get(5000) == before.get(5000)


def test_services_rejects_unknown_server() -> None:
    result = _services("status", "--only", "redis")
    assert result.returncode == 1
    assert result.stderr.strip().startswith("error: unknown server 'redis'")


def test_nothing_of_ours_listens_beyond_loopback(local_servers: dict[str, str]) -> None:
    listeners = process.listeners()
    if not any(listener.pids for listener in listeners):
        pytest.skip("ss shows no process ids here")
    ours_ports = {9200, 9300, 5000, 8080, 8474, 9001}
    groups: set[int] = set()
    for listener in listeners:
        if listener.port in ours_ports:
            groups.update(group for group in map(_group, listener.pids) if group is not None)
    assert groups, "found no listener of the local servers"
    ours = [
        listener
        for listener in listeners
        if listener.port in ours_ports or any(_group(pid) in groups for pid in listener.pids)
    ]
    for port in (9200, 9300, 5000):
        assert any(listener.port == port for listener in ours), f"nothing listens on {port}"
    wide = [f"{item.address}:{item.port} ({item.process})" for item in ours if item.address not in LOOPBACK]
    assert not wide, f"listening beyond 127.0.0.1: {wide}"


def _group(pid: int) -> int | None:
    try:
        return os.getpgid(pid)
    except OSError:
        return None


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_service_start_is_idempotent_and_stop_ends_only_its_own() -> None:
    port = _free_port()
    service = Moto(name=f"moto-test-{port}", port=port)
    try:
        first = service.start()
        assert first.up and first.owned and first.pid is not None
        assert paths.pid_file(service.name).read_text().strip() == str(first.pid)
        again = service.start()
        assert again.pid == first.pid
        assert {item.address for item in process.listeners_on(port)} <= LOOPBACK
    finally:
        assert service.stop()
    assert not process.port_open(port)
    assert not paths.pid_file(service.name).exists()
    assert not service.stop()
    assert not service.status().up


def test_start_refuses_a_port_taken_by_something_else() -> None:
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        port = squatter.getsockname()[1]
        service = Moto(name=f"moto-test-{port}", port=port)
        with pytest.raises(ServiceError, match=rf"port {port} is already taken by pid {os.getpid()}"):
            service.start()
    assert not paths.pid_file(service.name).exists()


def test_toxiproxy_adds_latency_and_cuts_the_link(moto_server: str) -> None:
    toxiproxy = start_toxiproxy()
    name = f"test-servers-{uuid.uuid4().hex[:8]}"
    proxy = toxiproxy.create_proxy(name, "127.0.0.1:0", "127.0.0.1:5000")
    try:
        host, _, port = proxy["listen"].rpartition(":")
        assert host == "127.0.0.1" and int(port) > 0
        url = f"http://{proxy['listen']}{HEALTH_PATH}"
        assert process.http_get(url) is not None
        toxic = toxiproxy.add_toxic(name, "latency", {"latency": 400})
        started = time.monotonic()
        assert process.http_get(url, timeout=5) is not None
        assert time.monotonic() - started >= 0.4
        toxiproxy.remove_toxic(name, toxic["name"])
        toxiproxy.set_enabled(name, False)
        assert process.http_get(url, timeout=1) is None
        toxiproxy.set_enabled(name, True)
        assert process.http_get(url, timeout=5) is not None
    finally:
        toxiproxy.delete_proxy(name)
    assert name not in toxiproxy.proxies()


def test_rie_invokes_a_handler_on_loopback_only() -> None:
    # Any importable callable of (event, context) will do: operator.is_ answers False.
    port, api_port = _free_port(), _free_port()
    with running_rie(handler="operator.is_", port=port, runtime_api_port=api_port) as rie:
        assert rie.invoke({"Records": []}) is False
        bound = process.listeners_on(port) + process.listeners_on(api_port)
        assert bound and {item.address for item in bound} <= LOOPBACK
    # The emulator's socket closes as its process group exits: give it a few seconds, not a race.
    wait_until(lambda: not process.port_open(port), 10, 0.2, f"port {port} to close")
