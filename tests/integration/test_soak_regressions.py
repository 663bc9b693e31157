"""Regressions found by the chaos soak (scripts/soak, docs/soak.md), each reduced to its smallest repro.

A test marked ``xfail(strict=True)`` documents a bug still in the engine: it fails today, and starts
passing (so strict xfail turns it red) when the engine is fixed; then drop the marker.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import boto3
import pytest
from botocore.config import Config

from devservers.workload import make_order
from projector.config import load_settings
from projector.runner import Runner, RunnerOptions
from projector.setup import create_source_table
from tests.support.orders_table import put_order

pytestmark = pytest.mark.integration

MOTO = "127.0.0.1:5000"


def _client(service: str, endpoint: str) -> Any:
    """The engine's own client (projector.clients: one attempt, short timeouts) for ``endpoint``."""
    from projector.clients import dynamodb_client, streams_client

    settings = load_settings().model_copy(update={"dynamodb_endpoint": endpoint})
    return dynamodb_client(settings) if service == "dynamodb" else streams_client(settings)


def _raw_client(service: str, endpoint: str) -> Any:
    """A plain boto3 client configured like projector.clients."""
    config = Config(
        region_name="us-east-1",
        retries={"max_attempts": 1, "mode": "standard"},
        connect_timeout=3,
        read_timeout=10,
    )
    return boto3.client(
        service,
        endpoint_url=endpoint,
        config=config,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


@pytest.fixture
def toxiproxy() -> Iterator[tuple[Any, str, str]]:
    """A Toxiproxy proxy in front of moto: (client, proxy name, its http:// listen URL)."""
    from devservers.toxiproxy import start_toxiproxy

    client = start_toxiproxy()
    name = f"soak-regression-{uuid.uuid4().hex[:8]}"
    proxy = client.create_proxy(name, "127.0.0.1:0", MOTO)
    try:
        yield client, name, f"http://{proxy['listen']}"
    finally:
        client.delete_proxy(name)


@pytest.fixture
def source(settings_env: Any, dynamodb: Any) -> str:
    table = load_settings().source_table
    create_source_table(dynamodb, table, ("order_id",))
    return table


class _Recorder:
    def __init__(self) -> None:
        self.ids: list[str] = []

    def __call__(self, event: dict[str, Any], context: Any) -> dict[str, Any]:
        self.ids.extend(record["dynamodb"]["Keys"]["order_id"]["S"] for record in event["Records"])
        return {"batchItemFailures": []}


class _SplitStreams:
    """DescribeStream on a sound link, GetShardIterator/GetRecords through the faulty one."""

    def __init__(self, sound: Any, faulty: Any) -> None:
        self._sound, self._faulty = sound, faulty

    def __getattr__(self, name: str) -> Any:
        return getattr(self._faulty if name in ("get_shard_iterator", "get_records") else self._sound, name)


def _orders(dynamodb: Any, table: str, first: int, count: int) -> list[str]:
    import random

    rng = random.Random(first)
    ids = [f"R{n:05d}" for n in range(first, first + count)]
    for order_id in ids:
        put_order(dynamodb, table, make_order(rng, order_id))
    return ids


def test_botocore_takes_a_truncated_streams_answer_for_an_empty_success(
    source: str, dynamodb: Any, toxiproxy: tuple[Any, str, str]
) -> None:
    """The premise of the next test: a GetRecords answer cut short (connection closed after 200 bytes)
    raises nothing; botocore (``enforce_content_length=False``) parses it as ``{}``: no ``Records``, no
    ``NextShardIterator``, which is also what the last answer of a *closed* shard looks like."""
    proxies, name, url = toxiproxy
    _orders(dynamodb, source, 0, 3)
    sound = _raw_client("dynamodbstreams", f"http://{MOTO}")
    arn = dynamodb.describe_table(TableName=source)["Table"]["LatestStreamArn"]
    shard = sound.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"][0]
    assert "EndingSequenceNumber" not in shard["SequenceNumberRange"]  # the shard is open
    iterator = sound.get_shard_iterator(
        StreamArn=arn, ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON"
    )["ShardIterator"]
    proxies.add_toxic(name, "limit_data", {"bytes": 200}, stream="downstream")
    answer = _raw_client("dynamodbstreams", url).get_records(ShardIterator=iterator)
    assert "Records" not in answer and "NextShardIterator" not in answer


def test_a_truncated_stream_answer_does_not_finish_an_open_shard(
    source: str, dynamodb: Any, toxiproxy: tuple[Any, str, str]
) -> None:
    """Was: ShardReader took an answer without NextShardIterator for the end of the (open) shard and the
    consumer checkpointed it finished: nothing later was ever read (soak: drift 478/323). Fixed in 2be0357."""
    proxies, name, url = toxiproxy
    settings = load_settings()
    sound = _client("dynamodbstreams", f"http://{MOTO}")
    first = _orders(dynamodb, source, 0, 3)
    proxies.add_toxic(name, "limit_data", {"bytes": 200}, stream="downstream")
    seen = _Recorder()
    options = RunnerOptions(until_idle_s=1.0, discover_interval_s=0.5, backoff_max_s=0.5, poll_interval_s=0.1)
    runner = Runner(
        seen,
        options=options,
        settings=settings,
        dynamodb=dynamodb,
        streams=_SplitStreams(sound, _client("dynamodbstreams", url)),
    )
    thread = threading.Thread(target=runner.run, daemon=True)
    thread.start()
    time.sleep(3.0)  # every read through the proxy is cut short meanwhile
    runner.stop()
    thread.join(30)
    assert not runner.checkpoints.finished(runner.stream_arn), "an open shard was checkpointed as finished"
    proxies.delete_proxy(name)
    proxies.create_proxy(name, "127.0.0.1:0", MOTO)  # the fixture deletes it again
    later = _orders(dynamodb, source, 3, 3)
    # a restart on a sound link must deliver everything, the later changes included
    Runner(
        seen,
        options=RunnerOptions(until_idle_s=2.0, poll_interval_s=0.1),
        settings=settings,
        dynamodb=dynamodb,
        streams=sound,
    ).run()
    assert set(first + later) <= set(seen.ids)


def test_a_truncated_scan_answer_does_not_end_a_backfill_segment(
    source: str, dynamodb: Any, toxiproxy: tuple[Any, str, str]
) -> None:
    """Was: a cut Scan answer parsed as {} ended the segment; a backfill "finished" with 0 of 300 items.
    Fixed in 2be0357."""
    from projector.source.scanner import SegmentScanner

    proxies, name, url = toxiproxy
    ids = _orders(dynamodb, source, 0, 20)
    proxies.add_toxic(name, "limit_data", {"bytes": 600}, stream="downstream")
    heal = threading.Timer(2.0, proxies.remove_toxic, args=(name, "limit_data_downstream"))
    heal.start()  # a fixed scanner retries the cut answers; the link heals meanwhile
    try:
        scanner = SegmentScanner(
            _client("dynamodb", url), source, total_segments=1, page_size=100, stop=threading.Event()
        )
        pages = list(scanner.pages(0))
    finally:
        heal.join()
    scanned = sum(len(page.items) for page in pages)
    assert scanned == len(ids), f"segment ended after {scanned} of {len(ids)} items"


def _start_through_a_cut(source: str, dynamodb: Any, toxiproxy: tuple[Any, str, str], cut_s: float) -> None:
    """Start a runner while its DynamoDB link is cut for ``cut_s`` seconds; it must deliver everything."""
    proxies, name, url = toxiproxy
    ids = _orders(dynamodb, source, 0, 3)
    proxies.set_enabled(name, False)
    heal = threading.Timer(cut_s, proxies.set_enabled, args=(name, True))
    heal.start()
    seen = _Recorder()
    try:
        Runner(
            seen,
            options=RunnerOptions(until_idle_s=1.5, poll_interval_s=0.1),
            settings=load_settings(),
            dynamodb=_client("dynamodb", url),
            streams=_client("dynamodbstreams", f"http://{MOTO}"),
        ).run()
    finally:
        heal.join()
    assert set(ids) <= set(seen.ids)


def test_the_runner_start_survives_a_short_network_cut(
    source: str, dynamodb: Any, toxiproxy: tuple[Any, str, str]
) -> None:
    """Was: DescribeTable at start was not retried: `projector run` exited 1 (EndpointConnectionError, or
    KeyError 'Table' on a cut answer). Fixed in 2be0357."""
    _start_through_a_cut(source, dynamodb, toxiproxy, cut_s=2.0)


def test_the_runner_start_waits_out_a_ten_second_cut(
    source: str, dynamodb: Any, toxiproxy: tuple[Any, str, str]
) -> None:
    _start_through_a_cut(source, dynamodb, toxiproxy, cut_s=10.0)


def test_a_backfill_dead_letter_can_be_redriven_once_the_item_is_fixed(
    settings_env: Any, dynamodb: Any
) -> None:
    import random

    from projector.backfill import Backfill, BackfillOptions
    from projector.redrive import redrive
    from projector.runtime import Runtime
    from projector.setup import setup
    from tests.support.orders_table import update_order

    runtime = Runtime()
    setup(runtime, with_source_table=True)
    order = {**make_order(random.Random(1), "P00001"), "created_at": "not-a-date"}  # OpenSearch rejects it
    put_order(dynamodb, runtime.settings.source_table, order)
    backfill = Backfill(runtime, BackfillOptions(segments=1, projections=("orders",)))
    source = backfill.source()
    backfill.run(source, backfill.prepare(source))
    letters = list(runtime.dead_letters.list())
    assert [letter.projection for letter in letters] == ["orders"]
    update_order(
        dynamodb,
        runtime.settings.source_table,
        order,
        created_at="2026-01-02T03:04:05Z",
        total=Decimal("12.50"),
    )
    results = list(redrive(Runtime()))
    assert [result.redriven for result in results] == [True], [result.error for result in results]
