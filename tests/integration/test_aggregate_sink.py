"""AggregateSink against the moto server: group moves, deletes, stale and repeated changes, concurrency,
failures, rebuild generations, a 10,000-change hot batch and the `projector aggregate` command."""

from __future__ import annotations

import json
import os
import random
import socket
import subprocess
import sys
import time
import uuid
from collections import Counter
from decimal import Decimal
from typing import Any

import pytest
from click.testing import CliRunner

from projections.orders import customer_totals, daily_sales
from projector.changes import BackfillStamp, Change, ChangeKind
from projector.clients import dynamodb_client
from projector.config import Settings
from projector.projection.base import AggregateProjection
from projector.retry import Deadline
from projector.sinks.aggregates import AggregateSink, AggregateTable, ensure_table, read_aggregate
from projector.stores.aggregates import AggregateStore
from tests.support.orders import OrderSource as Source
from tests.support.orders import batch

pytestmark = pytest.mark.integration

ENDPOINT = os.environ.get("PROJECTOR_DYNAMODB_ENDPOINT", "http://127.0.0.1:5000")
T0 = 1_700_000_000
STATUSES = ("PENDING", "PAID", "SHIPPED", "CANCELLED")


# ---------------------------------------------------------------- helpers


def expected(projection: AggregateProjection, items: dict[str, dict[str, Any]], key: str) -> dict[str, Any]:
    """The aggregate recomputed from the live items."""
    totals = {name: Decimal(0) for name in projection.measures}
    for item in items.values():
        for group, measures in projection.contributions(item).items():
            if group == key:
                for name, value in measures.items():
                    totals[name] += value
    return {
        "name": projection.name,
        "key": key,
        "order_count": int(totals["order_count"]),
        "revenue": f"{totals['revenue']:.2f}",
    }


class CountingClient:
    """Wraps a boto3 client, counting the group-row updates each TransactWriteItems sends."""

    def __init__(self, client: Any) -> None:
        self._client = client
        self.group_updates: Counter[str] = Counter()
        self.calls: Counter[str] = Counter()
        self.before_transact: Any = None

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._client, name)
        if not callable(attribute):
            return attribute

        def call(**kwargs: Any) -> Any:
            self.calls[name] += 1
            if name == "transact_write_items":
                if self.before_transact is not None:
                    hook, self.before_transact = self.before_transact, None
                    hook()
                for action in kwargs["TransactItems"]:
                    if "Update" in action:
                        row = action["Update"]["Key"]
                        self.group_updates[f"{row['pk']['S']}/{row['sk']['S']}"] += 1
            return attribute(**kwargs)

        return call


@pytest.fixture(scope="module")
def base_settings() -> Settings:
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
    settings = Settings(dynamodb_endpoint=ENDPOINT)
    try:
        dynamodb_client(settings).list_tables(Limit=1)
    except Exception as error:  # pragma: no cover - environment problem, not a test result
        pytest.fail(f"no DynamoDB at {ENDPOINT} ({error}); run scripts/services start --only moto")
    return settings


@pytest.fixture
def settings(base_settings: Settings) -> Any:
    name = f"aggregates-test-{uuid.uuid4().hex[:10]}"
    settings = base_settings.model_copy(update={"aggregates_table": name})
    client = dynamodb_client(settings)
    ensure_table(client, name)
    yield settings
    client.delete_table(TableName=name)


@pytest.fixture
def client(settings: Settings) -> Any:
    return dynamodb_client(settings)


@pytest.fixture
def sink(client: Any, settings: Settings) -> AggregateSink:
    return AggregateSink(client, settings)


def apply(sink: AggregateSink, changes: list[Change], *projections: AggregateProjection) -> list[Any]:
    results = []
    for projection in projections or (customer_totals, daily_sales):
        result = sink.apply(projection, batch(changes), Deadline.after(60))
        assert not result.failed, result.failed
        results.append(result)
    return results


def exact(client: Any, settings: Settings, source: Source, projection: AggregateProjection, key: str) -> None:
    assert read_aggregate(client, settings, projection, key) == expected(projection, source.items, key)


def check(client: Any, settings: Settings, source: Source, customers: list[str], days: list[str]) -> None:
    for projection, keys in ((customer_totals, customers), (daily_sales, days)):
        for key in keys:
            exact(client, settings, source, projection, key)


# ---------------------------------------------------------------- group moves and versions


def test_ensure_table_is_idempotent(client: Any, settings: Settings) -> None:
    assert ensure_table(client, settings.aggregates_table) is False
    table = client.describe_table(TableName=settings.aggregates_table)["Table"]
    assert table["TableStatus"] == "ACTIVE"
    assert table["BillingModeSummary"]["BillingMode"] == "PAY_PER_REQUEST"


def test_customer_move_status_flips_and_day_change(
    client: Any, settings: Settings, sink: AggregateSink
) -> None:
    source = Source()
    customers, days = ["c1", "c2"], ["2024-03-01", "2024-03-02"]
    apply(
        sink,
        [
            source.put("o1", customer_id="c1", total=Decimal("120.50")),
            source.put("o2", customer_id="c1", total=Decimal("0.25"), status="PENDING"),
        ],
    )
    check(client, settings, source, customers, days)
    assert read_aggregate(client, settings, customer_totals, "c1")["revenue"] == "120.75"
    for order_id, fields in (
        ("o1", {"customer_id": "c2"}),  # customer move
        ("o1", {"status": "CANCELLED"}),  # leaves both aggregates
        ("o1", {"status": "PAID"}),  # comes back
        ("o2", {"status": "SHIPPED"}),  # enters daily_sales
        ("o1", {"created_at": "2024-03-02T23:59:59Z"}),  # day move
        ("o2", {"total": Decimal("99.99"), "customer_id": "c2"}),  # amount and customer at once
    ):
        apply(sink, [source.put(order_id, **fields)])
        check(client, settings, source, customers, days)
    assert read_aggregate(client, settings, daily_sales, "2024-03-02") == {
        "name": "daily_sales",
        "key": "2024-03-02",
        "order_count": 1,
        "revenue": "120.50",
    }


def test_moves_within_one_batch(client: Any, settings: Settings, sink: AggregateSink) -> None:
    source = Source()
    changes = [
        source.put("o1", customer_id="c1"),
        source.put("o1", customer_id="c2"),
        source.put("o1", status="CANCELLED"),
        source.put("o1", status="PAID", customer_id="c3"),
        source.put("o2", customer_id="c3"),
        source.put("o2", customer_id="c1"),
    ]
    apply(sink, changes)
    check(client, settings, source, ["c1", "c2", "c3"], ["2024-03-01"])


def test_remove_and_recreation_after_delete(client: Any, settings: Settings, sink: AggregateSink) -> None:
    source = Source()
    first = [source.put("o1", total=Decimal("5.00")), source.put("o1", total=Decimal("7.00"))]
    apply(sink, first)
    delete = source.remove("o1")
    apply(sink, [delete])
    check(client, settings, source, ["c1"], ["2024-03-01"])
    assert read_aggregate(client, settings, customer_totals, "c1") == {
        "name": "customer_totals",
        "key": "c1",
        "order_count": 0,
        "revenue": "0.00",
    }
    recreated = source.put("o1", total=Decimal("3.10"), customer_id="c2")  # version restarts at 1
    assert recreated.new_image is not None and recreated.new_image["version"] == 1
    apply(sink, [recreated])
    check(client, settings, source, ["c1", "c2"], ["2024-03-01"])
    # the old life, the delete and the re-creation redelivered late: nothing changes
    results = apply(sink, [*first, delete, recreated])
    assert all(r.applied == 0 and r.transactions == 0 for r in results)
    check(client, settings, source, ["c1", "c2"], ["2024-03-01"])


def test_delete_and_recreate_in_one_batch(client: Any, settings: Settings, sink: AggregateSink) -> None:
    source = Source()
    apply(sink, [source.put("o1", total=Decimal("5.00"))])
    apply(
        sink,
        [
            source.remove("o1"),
            source.put("o1", total=Decimal("8.00"), customer_id="c2"),
            source.put("o1", total=Decimal("9.00")),
        ],
    )
    check(client, settings, source, ["c1", "c2"], ["2024-03-01"])


def test_older_version_after_newer_has_no_effect(
    client: Any, settings: Settings, sink: AggregateSink
) -> None:
    source = Source()
    v1 = source.put("o1", total=Decimal("1.00"))
    v2 = source.put("o1", total=Decimal("2.00"), customer_id="c2")
    v3 = source.put("o1", total=Decimal("3.00"))
    apply(sink, [v1])
    apply(sink, [v3])  # v2 is late
    check(client, settings, source, ["c1", "c2"], ["2024-03-01"])
    results = apply(sink, [v2])
    assert [r.applied for r in results] == [0, 0] and [r.stale for r in results] == [1, 1]
    assert all(r.transactions == 0 for r in results)
    check(client, settings, source, ["c1", "c2"], ["2024-03-01"])


def test_same_change_twice_has_no_effect(client: Any, settings: Settings, sink: AggregateSink) -> None:
    source = Source()
    changes = [source.put(f"o{i}", customer_id=f"c{i % 2}", total=Decimal(i)) for i in range(6)]
    apply(sink, changes)
    apply(sink, changes)  # the whole batch again
    apply(sink, changes + changes[:3])  # duplicates inside one batch
    apply(sink, [changes[2], changes[2]])
    check(client, settings, source, ["c0", "c1"], ["2024-03-01"])


def test_poison_changes_are_reported_and_the_rest_applies(
    client: Any, settings: Settings, sink: AggregateSink
) -> None:
    source = Source()
    good = source.put("o1", total=Decimal("4.00"))
    bad_total = source.put("o2", total="not a number")
    no_version = source.put("o3")
    assert no_version.new_image is not None
    del no_version.new_image["version"]
    source.items.pop("o2"), source.items.pop("o3")  # neither can be counted
    result = sink.apply(customer_totals, batch([good, bad_total, no_version]), Deadline.after(30))
    assert not result.failed
    assert sorted(str(c.keys["order_id"]) for c, _ in result.poison) == ["o2", "o3"]
    assert result.applied == 1
    exact(client, settings, source, customer_totals, "c1")


# ---------------------------------------------------------------- concurrency and failures


def test_concurrent_writer_between_read_and_write(client: Any, settings: Settings) -> None:
    """Another writer moves the record's token after our read: we are cancelled, re-read, re-fold."""
    source = Source()
    counting = CountingClient(client)
    ours, theirs = AggregateSink(counting, settings), AggregateSink(client, settings)
    v1 = source.put("o1", total=Decimal("10.00"))
    apply(theirs, [v1], customer_totals)
    v2 = source.put("o1", total=Decimal("20.00"), customer_id="c2")
    v3 = source.put("o1", total=Decimal("30.00"))
    counting.before_transact = lambda: apply(theirs, [v2, v3], customer_totals)  # they win the race
    result = ours.apply(customer_totals, batch([v2]), Deadline.after(30))
    assert not result.failed
    assert result.applied == 0 and result.stale == 1  # re-folded against v3: v2 is stale
    assert counting.calls["batch_get_item"] == 2  # the first read and the re-read
    check(client, settings, source, ["c1", "c2"], [])


def test_unreachable_endpoint_fails_items_within_the_deadline(base_settings: Settings) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # closed once the block ends
    settings = base_settings.model_copy(
        update={"dynamodb_endpoint": f"http://127.0.0.1:{port}", "aggregates_table": "nowhere"}
    )
    sink = AggregateSink(dynamodb_client(settings), settings)
    source = Source()
    changes = [source.put(f"o{i}") for i in range(5)]
    started = time.monotonic()
    result = sink.apply(customer_totals, batch(changes), Deadline.after(1.5))
    elapsed = time.monotonic() - started
    assert sorted(result.failed) == [f"o{i}" for i in range(5)]
    assert all("EndpointConnectionError" in reason for reason in result.failed.values())
    assert result.applied == 0 and result.requests >= 1
    assert elapsed < 2.5


# ---------------------------------------------------------------- rebuild generations


def test_rebuild_generations(client: Any, settings: Settings, sink: AggregateSink) -> None:
    source = Source()
    admin = AggregateTable(client, settings)
    apply(
        sink,
        [source.put("o1", total=Decimal("1.00")), source.put("o2", total=Decimal("2.00"))],
        customer_totals,
    )
    described = admin.describe(customer_totals)
    assert (described.read_generation, described.write_generations) == (1, (1,))
    assert described.stored_hash == customer_totals.definition_hash() and not described.needs_rebuild

    store = AggregateStore(client, settings, writer=sink)
    generation = store.begin_rebuild(customer_totals)
    assert generation == "g2" and store.begin_rebuild(customer_totals) == "g2"  # resumable
    # during the rebuild: stream writes reach both generations; the new one is only partly built
    delete = source.remove("o2")
    apply(sink, [source.put("o1", total=Decimal("1.50")), delete], customer_totals)
    exact(client, settings, source, customer_totals, "c1")
    # generation 2 holds only what was written since: o1 in full (it had no record there yet)
    assert read_aggregate(client, settings, customer_totals, "c1", generation=2) == {
        "name": "customer_totals",
        "key": "c1",
        "order_count": 1,
        "revenue": "1.50",
    }
    # the backfill now scans the live items into generation 2 (and generation 1, where they are stale)
    stamp = BackfillStamp(scan_started_at=source.clock + 10, read_at=source.clock + 10)
    scanned = [
        Change(
            keys={"order_id": k}, kind=ChangeKind.INSERT, new_image=dict(v), old_image=None, backfill=stamp
        )
        for k, v in source.items.items()
    ]
    result = sink.apply(customer_totals, batch(scanned), Deadline.after(30))
    assert not result.failed
    assert admin.describe(customer_totals).rebuilding
    assert store.finish_rebuild(customer_totals) == "g2"
    described = admin.describe(customer_totals)
    assert (described.read_generation, described.write_generations, described.rebuilding) == (
        2,
        (1, 2),
        False,
    )
    exact(client, settings, source, customer_totals, "c1")

    # a rolled-back generation is never reused
    assert store.begin_rebuild(customer_totals) == "g3"
    store.rollback(customer_totals)
    assert store.begin_rebuild(customer_totals) == "g4"
    store.rollback(customer_totals)
    assert admin.describe(customer_totals).write_generations == (2,)


def test_rebuild_seeds_tombstones(client: Any, settings: Settings, sink: AggregateSink) -> None:
    source = Source()
    created = source.put("o1", total=Decimal("6.00"))
    apply(sink, [created, source.remove("o1")], customer_totals)
    AggregateTable(client, settings).begin_rebuild(customer_totals)  # no carry-over: the writer seeds
    apply(sink, [created], customer_totals)  # a late redelivery after the delete
    assert read_aggregate(client, settings, customer_totals, "c1", generation=2)["order_count"] == 0
    assert read_aggregate(client, settings, customer_totals, "c1", generation=1)["order_count"] == 0


def test_scan_of_an_earlier_life_after_recreation(
    client: Any, settings: Settings, sink: AggregateSink
) -> None:
    """A scan read before a delete + re-creation, applied after them, must not bring the old life back
    (was a core bug in AttributeScheme.advance, fixed in bb24441)."""
    source = Source()
    changes = [
        source.put("o1", total=Decimal("1.00")),
        source.put("o1", total=Decimal("2.00")),
        source.put("o1", total=Decimal("3.00")),
    ]
    scanned = source.scan("o1")  # version 3 of the first life, read now ...
    changes += [source.remove("o1"), source.put("o1", total=Decimal("100.00"), customer_id="c2")]
    source.clock += 60
    apply(sink, changes, customer_totals)
    apply(sink, [scanned], customer_totals)  # ... and applied after the stream re-created the item
    check(client, settings, source, ["c1", "c2"], [])


# ---------------------------------------------------------------- a hot batch


@pytest.mark.slow
def test_hot_batch_writes_each_group_once(client: Any, settings: Settings) -> None:
    """10,000 changes on 2,000 orders of 50 customers in ONE batch: one ADD per touched group."""
    rng = random.Random(7)
    source = Source()
    customers = [f"c{i:02d}" for i in range(50)]
    days = [f"2024-05-{d:02d}" for d in range(1, 31)] + [f"2024-06-{d:02d}" for d in range(1, 31)]
    changes = []
    for i in range(2000):
        changes.append(
            source.put(
                f"o{i:04d}",
                customer_id=customers[i % 50],
                total=Decimal(rng.randint(1, 99999)) / 100,
                created_at=f"{days[i % 60]}T12:00:00Z",
                status=rng.choice(["PAID", "PENDING"]),
            )
        )
    while len(changes) < 10_000:
        order_id = f"o{rng.randrange(2000):04d}"
        roll = rng.random()
        if order_id not in source.items:
            i = int(order_id[1:])
            changes.append(
                source.put(order_id, customer_id=customers[i % 50], created_at=f"{days[i % 60]}T08:00:00Z")
            )
        elif roll < 0.05:
            changes.append(source.remove(order_id))
        elif roll < 0.25:  # a move to the paired customer: links two groups
            current = customers.index(source.items[order_id]["customer_id"])
            changes.append(source.put(order_id, customer_id=customers[current ^ 1]))
        elif roll < 0.6:
            changes.append(source.put(order_id, status=rng.choice(STATUSES)))
        else:
            changes.append(source.put(order_id, total=Decimal(rng.randint(1, 99999)) / 100))
    counting = CountingClient(client)
    sink = AggregateSink(counting, settings)
    for projection in (customer_totals, daily_sales):
        counting.group_updates.clear()
        started = time.monotonic()
        result = sink.apply(projection, batch(changes), Deadline.after(600))
        elapsed = time.monotonic() - started
        assert not result.failed and not result.poison
        assert result.applied + result.stale == 10_000
        assert counting.group_updates, "no group row written"
        assert max(counting.group_updates.values()) == 1, counting.group_updates.most_common(3)
        assert result.max_group_writes == 1
        print(
            f"{projection.name}: {result.transactions} transactions, {result.requests} requests, "
            f"{len(counting.group_updates)} group rows, {elapsed:.1f}s"
        )
    check(client, settings, source, customers, days)


# ---------------------------------------------------------------- the command


def test_aggregate_command(
    client: Any, settings: Settings, sink: AggregateSink, monkeypatch: pytest.MonkeyPatch
) -> None:
    from projector.cli.main import cli

    source = Source()
    apply(
        sink,
        [
            source.put("o1", total=Decimal("120.5"), customer_id="c9"),
            source.put("o2", total=Decimal("0.00"), customer_id="c9"),
        ],
    )
    monkeypatch.setenv("PROJECTOR_AGGREGATES_TABLE", settings.aggregates_table)
    monkeypatch.setenv("PROJECTOR_DYNAMODB_ENDPOINT", ENDPOINT)
    runner = CliRunner()
    out = runner.invoke(cli, ["aggregate", "customer_totals", "c9", "--json"])
    assert out.exit_code == 0, out.output
    assert json.loads(out.stdout) == {
        "name": "customer_totals",
        "key": "c9",
        "order_count": 2,
        "revenue": "120.50",
    }
    out = runner.invoke(cli, ["aggregate", "daily_sales", "1999-01-01", "--json"])
    assert json.loads(out.stdout) == {
        "name": "daily_sales",
        "key": "1999-01-01",
        "order_count": 0,
        "revenue": "0.00",
    }
    out = runner.invoke(cli, ["aggregate", "customer_totals", "c9"])
    assert out.exit_code == 0 and "120.50" in out.output
    # through the console script's error handling: one line on stderr, exit 2
    env = {**os.environ, "PROJECTOR_AGGREGATES_TABLE": settings.aggregates_table}
    done = subprocess.run(
        [sys.executable, "-m", "projector.cli.main", "aggregate", "orders", "x"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert done.stderr.strip().count("\n") == 0 and "customer_totals, daily_sales" in done.stderr
