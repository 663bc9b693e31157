"""Issue 14, aggregate side, against the moto server: keys too long for DynamoDB, numbers DynamoDB can
hold (and the ones it cannot), and the per-item group limit counted on old and new groups.

Each test fails on the code before the fix (a refused transaction failing every item in it, a decimal
exception out of the sink or the reader, a REMOVE refused forever) and checks the final rows against
the live items (the `Source` stand-in, or the real source table for backfill + verify).
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import replace
from decimal import Context, Decimal, Inexact, localcontext
from typing import Any

import pytest
from click.testing import CliRunner

from projections.orders import customer_totals, daily_sales
from projector.changes import Change, ChangeKind, StreamPosition
from projector.changes.batch import ItemChanges
from projector.config import Settings
from projector.handler import runtime
from projector.projection.base import AggregateProjection, Count, Sum
from projector.retry import Deadline
from projector.runtime import Runtime
from projector.sinks.aggregates import AggregateSink, AggregateTable, read_aggregate, render_measure
from tests.integration.test_aggregate_sink import (
    ENDPOINT,
    Source,
    base_settings,
    batch,
    client,
    settings,
    sink,
)
from tests.integration.test_backfill import backfill, ready_runtime, verify
from tests.support.handler import handle
from tests.support.orders_table import put_order, update_order
from tests.support.streams import capture_records
from tests.support.truth import scan_items

pytestmark = pytest.mark.integration
__all__ = ["base_settings", "client", "settings", "sink"]  # fixtures of other test modules

BIG = "123456789012345678901234567.0"  # 28 significant digits: the moto server adds 28 digits exactly
LONG_ASCII = "c" * 3000
LONG_CJK = "注" * 1000  # 1,000 characters, 3,000 UTF-8 bytes

TAGS = AggregateProjection(
    name="tag_totals",
    key_attributes=("order_id",),
    group_name="tag",
    measures={"items": Count(), "amount": Sum(attribute="total", places=2)},
    groups=lambda item: list(item.get("tags", [])),
)


def rendered(projection: AggregateProjection, items: dict[str, dict[str, Any]], key: str) -> dict[str, Any]:
    """The aggregate of group ``key`` recomputed from the live items, as `read_aggregate` renders it.

    Summed in a 100-digit context of its own: Python's default (28 digits) would round these sums.
    """
    totals = dict.fromkeys(projection.measures, Decimal(0))
    with localcontext(Context(prec=100, traps=[Inexact])):
        for item in items.values():
            for name, value in projection.contributions(item).get(key, {}).items():
                totals[name] += value
    return {
        "name": projection.name,
        "key": key,
        **{name: render_measure(m, totals[name]) for name, m in projection.measures.items()},
    }


def assert_exact(
    client: Any, settings: Settings, projection: AggregateProjection, items: dict, keys: list
) -> None:
    for key in keys:
        assert read_aggregate(client, settings, projection, key) == rendered(projection, items, key), key[:20]


def keyed_batch(changes: list[Change], projection: AggregateProjection) -> list[ItemChanges]:
    grouped: dict[str, list[Change]] = defaultdict(list)
    for index, change in enumerate(changes):
        grouped[projection.item_id(change.keys)].append(replace(change, batch_index=index))
    return [ItemChanges(item_id, items) for item_id, items in grouped.items()]


# ---------------------------------------------------------------- case 2: keys DynamoDB cannot hold


def test_long_group_and_item_keys_are_written_and_read(
    client: Any, settings: Settings, sink: AggregateSink, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = Source()
    long_order = "o" * 2040  # fits the source table's key, not "customer_totals#item#" + it
    changes = [
        source.put("o1", customer_id="c1", total=Decimal("1.50")),
        source.put(long_order, customer_id="c1", total=Decimal("2.25")),
        source.put("o2", customer_id=LONG_ASCII, total=Decimal("3.00")),
        source.put("o3", customer_id=LONG_CJK, total=Decimal("4.00")),
        source.put("o4", customer_id=LONG_CJK, total=Decimal("5.00")),
    ]
    result = sink.apply(customer_totals, batch(changes), Deadline.after(60))
    assert not result.failed and not result.poison, (result.failed, result.poison)
    keys = ["c1", LONG_ASCII, LONG_CJK]
    assert_exact(client, settings, customer_totals, source.items, keys)

    # later changes find the hashed records and rows: a move out of the long group, a removal, a replay
    later = [
        source.put("o4", customer_id="c1"),
        source.remove(long_order),
        source.put("o2", total=Decimal("7.00")),
    ]
    for delivery in (later, later, changes + later):
        result = sink.apply(customer_totals, batch(delivery), Deadline.after(60))
        assert not result.failed and not result.poison
    assert_exact(client, settings, customer_totals, source.items, keys)

    # `projector aggregate NAME KEY` with the long key finds its row
    monkeypatch.setenv("PROJECTOR_AGGREGATES_TABLE", settings.aggregates_table)
    monkeypatch.setenv("PROJECTOR_DYNAMODB_ENDPOINT", ENDPOINT)
    from projector.cli.main import cli

    out = CliRunner().invoke(cli, ["aggregate", "customer_totals", LONG_ASCII, "--json"])
    assert out.exit_code == 0, out.output
    assert json.loads(out.stdout) == rendered(customer_totals, source.items, LONG_ASCII)
    assert json.loads(out.stdout)["order_count"] == 1


@pytest.mark.parametrize("kind", ["binary", "composite"])
def test_long_binary_and_composite_item_keys(
    client: Any, settings: Settings, sink: AggregateSink, kind: str
) -> None:
    if kind == "binary":
        projection = TAGS.model_copy(update={"name": "blob_tags", "key_attributes": ("k",)})
        keys = [{"k": bytes([n]) * 1100} for n in range(3)]  # 2,200 hex characters each
    else:
        projection = TAGS.model_copy(update={"name": "pair_tags", "key_attributes": ("pk", "sk")})
        keys = [{"pk": f"{n}" * 2000, "sk": "s" * 1000} for n in range(3)]  # DynamoDB's own maxima
    live: dict[str, dict[str, Any]] = {}
    changes: list[Change] = []
    for sequence, (keyset, tags, version) in enumerate(
        [(keys[0], ["a"], 1), (keys[1], ["a", "b"], 1), (keys[2], ["b"], 1), (keys[0], ["b"], 2)], start=1
    ):
        item = {**keyset, "tags": tags, "total": Decimal(sequence), "version": Decimal(version)}
        item_id = projection.item_id(keyset)
        old = live.get(item_id)
        live[item_id] = item
        position = StreamPosition(created_at=1_700_000_000 + sequence, sequence=str(100 * sequence))
        kind_ = ChangeKind.MODIFY if old else ChangeKind.INSERT
        changes.append(Change(dict(keyset), kind_, dict(item), dict(old) if old else None, position))
    removed = live.pop(projection.item_id(keys[1]))
    changes.append(
        Change(dict(keys[1]), ChangeKind.REMOVE, None, dict(removed), StreamPosition(1_700_000_009, "900"))
    )
    for delivery in (changes[:2], changes, changes[3:]):
        result = sink.apply(projection, keyed_batch(delivery, projection), Deadline.after(60))
        assert not result.failed and not result.poison, (result.failed, result.poison)
    assert_exact(client, settings, projection, live, ["a", "b"])
    assert read_aggregate(client, settings, projection, "b")["items"] == 2


def test_only_the_item_dynamodb_refuses_is_poison(
    client: Any, settings: Settings, sink: AggregateSink
) -> None:
    """A record over DynamoDB's 400 KB item limit shares a transaction with three good items."""
    source = Source()
    fat_tags = [f"{n:02d}" + "t" * 5000 for n in range(90)]  # 90 groups of 5 KB: a 450 KB record
    changes = [source.put(f"o{n}", tags=["small"], total=Decimal(n)) for n in range(1, 4)]
    changes.append(source.put("fat", tags=fat_tags))
    result = sink.apply(TAGS, batch(changes), Deadline.after(60))
    assert not result.failed, result.failed
    assert [str(c.keys["order_id"]) for c, _ in result.poison] == ["fat"]
    assert "tag_totals" in result.poison[0][1]
    del source.items["fat"]  # poison: not counted
    assert_exact(client, settings, TAGS, source.items, ["small", fat_tags[0], fat_tags[-1]])
    assert read_aggregate(client, settings, TAGS, "small")["items"] == 3


BIG_ORDERS = [  # the sum has 28 significant digits + 2 places: today's reader and verify crash on it
    {"order_id": "b1", "customer_id": "big", "total": Decimal(BIG), "created_at": "2024-03-02T10:00:00Z"},
    {"order_id": "b2", "customer_id": "big", "total": Decimal("0.8"), "created_at": "2024-03-02T11:00:00Z"},
]
ISSUE_ORDERS = [  # the issue's own case: two orders summing to 29 significant digits
    {"order_id": "i1", "customer_id": "issue", "total": Decimal("123456789012345678901234567.50")},
    {"order_id": "i2", "customer_id": "issue", "total": Decimal("0.25")},
]
LONG_KEY_ORDERS = [
    {"order_id": "l1", "customer_id": LONG_ASCII, "total": Decimal("1.25")},
    {"order_id": "l2", "customer_id": LONG_CJK, "total": Decimal("2.50")},
    {"order_id": "x" * 2040, "customer_id": "c1", "total": Decimal("3.75")},
]


@pytest.mark.parametrize(
    "orders",
    [LONG_KEY_ORDERS, BIG_ORDERS, ISSUE_ORDERS],
    ids=["long-keys", "large-numbers", "29-digit-sum"],
)
def test_backfill_verify_and_cli_agree_with_the_source_table(
    settings_env: Any, opensearch: Any, dynamodb: Any, orders: list[dict[str, Any]]
) -> None:
    runtime: Runtime = ready_runtime()
    table = runtime.settings.source_table
    base = {"status": "PAID", "currency": "EUR", "created_at": "2024-03-01T10:00:00Z", "version": Decimal(1)}
    for order in orders:
        put_order(dynamodb, table, {**base, **order})
    names = ("customer_totals", "daily_sales")
    report = backfill(runtime, segments=1, projections=names)
    assert report.status == "finished"
    checked = verify(runtime, settle_s=0, projections=names)
    assert checked.drift == 0, checked.to_json()

    truth = scan_items(dynamodb, table)
    from projector.cli.main import cli

    for projection in (customer_totals, daily_sales):
        groups = {key for item in truth.values() for key in projection.contributions(item)}
        assert groups
        for key in groups:
            want = rendered(projection, truth, key)
            assert read_aggregate(dynamodb, runtime.settings, projection, key) == want
            out = CliRunner().invoke(cli, ["aggregate", projection.name, key, "--json"])
            assert out.exit_code == 0, out.output
            assert json.loads(out.stdout) == want
    if orders is BIG_ORDERS:
        assert rendered(customer_totals, truth, "big")["revenue"] == "123456789012345678901234567.80"
    if orders is ISSUE_ORDERS:  # the moto launcher adds with DynamoDB's 38 digits, as DynamoDB does
        assert rendered(customer_totals, truth, "issue")["revenue"] == "123456789012345678901234567.75"


# ---------------------------------------------------------------- case 3: numbers


def test_a_change_dynamodb_cannot_hold_is_poison_and_the_rest_applies(
    client: Any, settings: Settings, sink: AggregateSink
) -> None:
    source = Source()
    first = [
        source.put("huge", customer_id="h", total=Decimal("1E+37")),
        source.put("o1", customer_id="c1", total=Decimal("10.00")),
    ]
    result = sink.apply(customer_totals, batch(first), Deadline.after(60))
    assert not result.failed and not result.poison
    assert read_aggregate(client, settings, customer_totals, "h")["revenue"] == "1" + "0" * 37 + ".00"

    stored = dict(source.items["huge"])
    # 1E+37 -> 0.01 moves the group by a 39-digit number: DynamoDB cannot hold it
    second = [source.put("huge", total=Decimal("0.01")), source.put("o1", total=Decimal("20.00"))]
    for _ in range(2):  # a redrive is refused the same way
        result = sink.apply(customer_totals, batch(second), Deadline.after(60))
        assert not result.failed
        assert [str(c.keys["order_id"]) for c, _ in result.poison] == ["huge"]
        reason = result.poison[0][1]
        assert (
            "customer_totals" in reason
            and "'revenue'" in reason
            and "0.01" not in reason
            and "E+37" not in reason
        )
    live = {**source.items, "huge": stored}  # the poison change is not applied: the stored one counts
    assert_exact(client, settings, customer_totals, live, ["h", "c1"])

    # the stored contribution stays removable
    result = sink.apply(customer_totals, batch([source.remove("huge")]), Deadline.after(60))
    assert not result.failed and not result.poison
    assert_exact(client, settings, customer_totals, source.items, ["h", "c1"])


# ---------------------------------------------------------------- case 4: groups per item


def test_group_limit_counts_old_and_new_groups_and_remove_always_applies(
    client: Any, settings: Settings, sink: AggregateSink
) -> None:
    source = Source()
    tags = [f"t{n:03d}" for n in range(120)]
    result = sink.apply(
        TAGS, batch([source.put("o1", tags=tags[:60]), source.put("o2", tags=["t000"])]), Deadline.after(60)
    )
    assert not result.failed and not result.poison
    stored = dict(source.items["o1"])
    grow = [source.put("o1", tags=tags), source.put("o2", total=Decimal("5.00"))]
    for _ in range(2):  # told at the first such change, and again on a redrive
        result = sink.apply(TAGS, batch(grow), Deadline.after(60))
        assert not result.failed
        assert [str(c.keys["order_id"]) for c, _ in result.poison] == ["o1"]
        assert "tag_totals" in result.poison[0][1] and "99" in result.poison[0][1]
    assert_exact(client, settings, TAGS, {**source.items, "o1": stored}, tags[::7])

    # moving to 60 other groups touches 120 (old and new): refused too, the stored 60 stay consistent
    result = sink.apply(TAGS, batch([source.put("o1", tags=tags[60:])]), Deadline.after(60))
    assert [str(c.keys["order_id"]) for c, _ in result.poison] == ["o1"]
    assert_exact(client, settings, TAGS, {**source.items, "o1": stored}, tags[::7])

    result = sink.apply(TAGS, batch([source.remove("o1")]), Deadline.after(60))
    assert not result.failed and not result.poison
    assert_exact(client, settings, TAGS, source.items, tags)


def test_a_record_stored_past_the_limit_by_earlier_code_is_still_removable(
    client: Any, settings: Settings, sink: AggregateSink
) -> None:
    """Before the limit counted old groups, an item could grow to 120 groups; its REMOVE now applies."""
    source = Source()
    tags = [f"t{n:03d}" for n in range(120)]
    earlier = AggregateSink(client, settings, max_actions=200)  # counts only changed groups, as before
    for change in (
        source.put("o1", tags=tags[:60]),
        source.put("o1", tags=tags),
        source.put("o2", tags=["t000"]),
    ):
        result = earlier.apply(TAGS, batch([change]), Deadline.after(60))
        assert not result.failed and not result.poison
    assert read_aggregate(client, settings, TAGS, "t119")["items"] == 1
    removal = source.remove("o1")
    for _ in range(2):  # and a redrive of it is stale
        result = sink.apply(TAGS, batch([removal]), Deadline.after(60))
        assert not result.failed and not result.poison, (result.failed, result.poison)
    assert_exact(client, settings, TAGS, source.items, tags)


def test_remove_during_a_rebuild_of_an_item_with_many_groups(
    client: Any, settings: Settings, sink: AggregateSink
) -> None:
    """60 groups in two generations need 122 actions: each generation commits on its own."""
    source = Source()
    tags = [f"t{n:02d}" for n in range(60)]
    assert not sink.apply(TAGS, batch([source.put("o1", tags=tags)]), Deadline.after(60)).poison
    generation = AggregateTable(client, settings).begin_rebuild(TAGS)
    result = sink.apply(TAGS, batch([source.scan("o1"), source.put("o2", tags=["t00"])]), Deadline.after(60))
    assert not result.failed and not result.poison
    assert read_aggregate(client, settings, TAGS, "t05", generation=generation)["items"] == 1
    result = sink.apply(TAGS, batch([source.remove("o1")]), Deadline.after(60))
    assert not result.failed and not result.poison, result.poison
    for gen in (1, generation):
        for tag in tags:
            assert read_aggregate(client, settings, TAGS, tag, generation=gen) == rendered(
                TAGS, source.items, tag
            )
    AggregateTable(client, settings).finish_rebuild(TAGS)
    assert_exact(client, settings, TAGS, source.items, tags)


def test_the_handler_dead_letters_a_number_dynamodb_cannot_hold_and_applies_the_rest(
    pipeline: Any, dynamodb: Any, dynamodbstreams: Any, opensearch: Any
) -> None:
    """Through Lambda's handler: no exception, no batch failure; the one change is dead-lettered whole."""
    table = pipeline.source_table
    base = {"status": "PAID", "currency": "EUR", "created_at": "2024-03-01T10:00:00Z", "version": Decimal(1)}
    huge = {**base, "order_id": "huge", "customer_id": "h", "total": Decimal("1E+37")}
    other = {**base, "order_id": "o1", "customer_id": "c1", "total": Decimal("10.00")}
    other["created_at"] = "2024-03-02T10:00:00Z"  # its own day: moto adds only 28 digits exactly
    put_order(dynamodb, table, huge)
    put_order(dynamodb, table, other)
    inserts = capture_records(dynamodb, dynamodbstreams, table)
    assert handle(inserts) == {"batchItemFailures": []}
    update_order(dynamodb, table, huge, total=Decimal("0.01"))
    update_order(dynamodb, table, other, total=Decimal("20.00"))
    records = capture_records(dynamodb, dynamodbstreams, table)[len(inserts) :]
    assert len(records) == 2
    assert handle(records) == {"batchItemFailures": []}

    letters = [json.loads(path.read_text()) for path in pipeline.dead_letters_dir.rglob("*.json")]
    assert sorted(letter["projection"] for letter in letters) == ["customer_totals", "daily_sales"]
    for letter in letters:
        assert letter["reason"] == "poison" and "'revenue'" in letter["error"]
        assert letter["record"]["dynamodb"]["NewImage"]["total"] == {"N": "0.01"}  # the whole record
    settings = runtime().settings
    truth = scan_items(dynamodb, table)
    for projection, key in ((customer_totals, "c1"), (daily_sales, "2024-03-02")):  # applied
        assert read_aggregate(dynamodb, settings, projection, key) == rendered(projection, truth, key)
    counted = {**truth, "huge": {**truth["huge"], "total": Decimal("1E+37")}}  # the refused change is not
    for projection, key in ((customer_totals, "h"), (daily_sales, "2024-03-01")):
        assert read_aggregate(dynamodb, settings, projection, key) == rendered(projection, counted, key)
