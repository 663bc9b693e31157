"""Property: under any delivery of a history, every aggregate equals a recomputation from the live items.

Histories over a few dozen orders (inserts, modifies with group moves and cancellations, removes,
re-creations whose version restarts at 1 later in the stream) are delivered in stream order in random
batches, with duplicates inside batches, re-deliveries of earlier batches, batches applied by two
writers racing, tiny transactions (forcing split components) and a late redrive of old changes in
random order. Amounts include large ones (up to ~1E+23, sums within the 28 digits the moto server
adds exactly) and items grow and shrink their number of groups (a tag projection whose per-item limit
is a few groups): changes past the limit are poison, the rows always equal the stored records, and at
the end every item can be removed. Runs against the moto server; one table for the module, fresh
projection names per example.
"""

from __future__ import annotations

import itertools
import os
import threading
import uuid
from collections import defaultdict
from dataclasses import replace
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from projections.orders import customer_totals, daily_sales
from projector.changes import Change, ChangeKind, StreamPosition
from projector.changes.batch import ItemChanges
from projector.clients import dynamodb_client
from projector.config import Settings
from projector.projection.base import AggregateProjection
from projector.retry import Deadline
from projector.sinks.aggregates import AggregateSink, ensure_table, numbers, render_measure
from projector.sinks.aggregates.keys import group_pk, item_pk, meta_pk
from projector.sinks.aggregates.records import decode_record
from tests.support.projections import TAGS

pytestmark = pytest.mark.integration

ENDPOINT = os.environ.get("PROJECTOR_DYNAMODB_ENDPOINT", "http://127.0.0.1:5000")
CUSTOMERS = ("ada", "bob", "cy", "dee")
DAYS = ("2024-02-28", "2024-02-29", "2024-03-01")
STATUSES = ("PENDING", "PAID", "SHIPPED", "CANCELLED")
TAG_KEYS = tuple(f"t{n}" for n in range(8))
_examples = itertools.count()


@pytest.fixture(scope="module")
def store() -> Any:
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
    table = f"aggregates-props-{uuid.uuid4().hex[:10]}"
    config = Settings(dynamodb_endpoint=ENDPOINT, aggregates_table=table)
    client = dynamodb_client(config)
    try:
        ensure_table(client, table)
    except Exception as error:  # pragma: no cover - environment problem
        pytest.fail(f"no DynamoDB at {ENDPOINT} ({error}); run scripts/services start --only moto")
    yield client, config
    client.delete_table(TableName=table)


def history(steps: list[tuple[int, ...]]) -> tuple[list[Change], dict[str, dict]]:
    """Stream changes of the steps applied to an empty table, and the live items at the end."""
    items: dict[str, dict[str, Any]] = {}
    changes: list[Change] = []
    for sequence, (order, remove, customer, status, cents, day, scale, grow) in enumerate(steps, start=1):
        order_id = f"o{order}"
        old = items.get(order_id)
        position = StreamPosition(created_at=1_700_000_000 + sequence, sequence=str(10**20 + sequence))
        if remove:
            if old is None:
                continue
            del items[order_id]
            changes.append(Change({"order_id": order_id}, ChangeKind.REMOVE, None, dict(old), position))
            continue
        new = {
            "order_id": order_id,
            "customer_id": CUSTOMERS[customer],
            "status": STATUSES[status],
            "total": Decimal(cents).scaleb(scale - 2),
            "tags": list(TAG_KEYS[: max(0, min(len(TAG_KEYS), len(old["tags"] if old else []) + grow))]),
            "created_at": f"{DAYS[day]}T{sequence % 24:02d}:00:00Z",
            "version": old["version"] + 1 if old else Decimal(1),
        }
        items[order_id] = new
        kind = ChangeKind.MODIFY if old else ChangeKind.INSERT
        changes.append(Change({"order_id": order_id}, kind, dict(new), dict(old) if old else None, position))
    return changes, items


def as_batch(changes: list[Change]) -> list[ItemChanges]:
    grouped: dict[str, list[Change]] = defaultdict(list)
    for index, change in enumerate(changes):
        grouped[change.keys["order_id"]].append(replace(change, batch_index=index))
    return [ItemChanges(item_id, item_changes) for item_id, item_changes in grouped.items()]


def expected(projection: AggregateProjection, items: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    totals: dict[str, dict[str, Decimal]] = defaultdict(lambda: defaultdict(Decimal))
    for item in items.values():
        for group, measures in projection.contributions(item).items():
            for name, value in measures.items():
                totals[group][name] = numbers.add(totals[group][name], value)
    keys = keys_of(projection)
    return {
        key: {name: render_measure(m, totals[key][name]) for name, m in projection.measures.items()}
        for key in keys
    }


def keys_of(projection: AggregateProjection) -> tuple[str, ...]:
    return {"customer_id": CUSTOMERS, "day": DAYS, "tag": TAG_KEYS}[projection.group_name]


def records_agree_with_rows(
    client: Any, table: str, projection: AggregateProjection, orders: set[str]
) -> None:
    """Every group row equals the sum of the stored contribution records (whatever was refused)."""
    keys = [{"pk": {"S": item_pk(projection.name, order)}, "sk": {"S": "g1"}} for order in sorted(orders)]
    totals: dict[str, dict[str, Decimal]] = defaultdict(lambda: defaultdict(Decimal))
    for start in range(0, len(keys), 100):
        request = {table: {"Keys": keys[start : start + 100], "ConsistentRead": True}}
        for raw in client.batch_get_item(RequestItems=request)["Responses"][table]:
            for group, measures in decode_record(raw).contributions.items():
                for name, value in measures.items():
                    totals[group][name] = numbers.add(totals[group][name], value)
    want = {
        key: {name: render_measure(m, totals[key][name]) for name, m in projection.measures.items()}
        for key in TAG_KEYS
    }
    assert stored(client, table, projection, TAG_KEYS) == want


def stored(
    client: Any, table: str, projection: AggregateProjection, keys: tuple[str, ...]
) -> dict[str, dict[str, Any]]:
    """Every group row of generation 1 in one consistent BatchGetItem (absent rows: zeros)."""
    request = [{"pk": {"S": group_pk(projection.name, key)}, "sk": {"S": "g1"}} for key in keys]
    response = client.batch_get_item(RequestItems={table: {"Keys": request, "ConsistentRead": True}})
    rows = {row["pk"]["S"]: row for row in response["Responses"][table]}
    result = {}
    for key in keys:
        row = rows.get(group_pk(projection.name, key), {})
        result[key] = {
            name: render_measure(m, Decimal(row[name]["N"]) if name in row else Decimal(0))
            for name, m in projection.measures.items()
        }
    return result


def cleanup(client: Any, table: str, projections: list[AggregateProjection], orders: set[str]) -> None:
    """Delete the example's rows, so the shared table stays small."""
    keys = [(meta_pk(p.name), "meta") for p in projections]
    keys += [(item_pk(p.name, order), "g1") for p in projections for order in orders]
    keys += [(group_pk(p.name, key), "g1") for p in projections for key in CUSTOMERS + DAYS + TAG_KEYS]
    for start in range(0, len(keys), 25):
        deletes = [
            {"DeleteRequest": {"Key": {"pk": {"S": pk}, "sk": {"S": sk}}}}
            for pk, sk in keys[start : start + 25]
        ]
        client.batch_write_item(RequestItems={table: deletes})


def race(sink: AggregateSink, projection: AggregateProjection, delivery: list[Change]) -> list[Any]:
    """Two writers apply the same delivery at once (a Lambda retry racing the original, say)."""
    results: list[Any] = []

    def write() -> None:
        results.append(sink.apply(projection, as_batch(delivery), Deadline.after(60)))

    writers = [threading.Thread(target=write) for _ in range(2)]
    for writer in writers:
        writer.start()
    for writer in writers:
        writer.join()
    return results


steps_strategy = st.lists(
    st.tuples(
        st.integers(0, 24),
        st.sampled_from([False, False, False, True]),
        st.integers(0, len(CUSTOMERS) - 1),
        st.integers(0, len(STATUSES) - 1),
        st.integers(0, 99_999),
        st.integers(0, len(DAYS) - 1),
        st.sampled_from([0, 0, 0, 20]),  # amounts up to ~1E+23 now and then
        st.integers(-1, 2),  # the item's tags grow (or shrink) by this many
    ),
    min_size=1,
    max_size=60,
)


@settings(
    max_examples=int(os.environ.get("AGGREGATE_PROPERTY_EXAMPLES", "80")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(steps=steps_strategy, data=st.data())
def test_aggregates_equal_recomputation_from_live_items(store: Any, steps: list, data: st.DataObject) -> None:
    client, config = store
    n = next(_examples)
    projections = [
        customer_totals.model_copy(update={"name": f"customer_totals_{n}"}),
        daily_sales.model_copy(update={"name": f"daily_sales_{n}"}),
    ]
    tags = TAGS.model_copy(update={"name": f"tags_{n}"})
    changes, live = history(steps)
    limit = data.draw(st.sampled_from([100, 100, 4]), label="max transaction actions")
    sink = AggregateSink(client, config, max_actions=limit)
    # 2 or 3 groups per item (old and new): growing past it is poison, the stored record stays
    tag_sink = AggregateSink(
        client, config, max_actions=data.draw(st.sampled_from([3, 4]), label="tag limit")
    )
    sinks = [(projection, sink) for projection in projections]
    with_tags = data.draw(st.sampled_from([True, False, False]), label="tag projection")  # runtime
    if with_tags:
        sinks.append((tags, tag_sink))

    def deliver(delivery: list[Change], racing: bool = False) -> None:
        for projection, writer in sinks:
            refusable = projection is tags  # only the tag projection has items past its limit
            if not racing:
                result = writer.apply(projection, as_batch(delivery), Deadline.after(60))
                assert not result.failed and (refusable or not result.poison), (result.failed, result.poison)
                continue
            results = race(writer, projection, delivery)
            assert len(results) == 2, "a writer raised"
            assert all(not r.failed for r in results), [r.failed for r in results]

    # stream order, random batch boundaries, duplicates, re-deliveries and racing writers
    batches: list[list[Change]] = []
    current: list[Change] = []
    for change in changes:
        current.append(change)
        if data.draw(st.integers(0, 9), label="duplicate") == 0:
            current.append(change)
        if data.draw(st.integers(0, 3), label="cut") == 0:
            batches.append(current)
            current = []
    if current:
        batches.append(current)
    for index, delivery in enumerate(batches):
        deliver(delivery, racing=data.draw(st.integers(0, 7), label="race") == 0)
        if index and data.draw(st.integers(0, 4), label="redeliver") == 0:
            deliver(batches[data.draw(st.integers(0, index), label="which")])
    # a late redrive of old changes, in random order and random groupings
    old = data.draw(st.lists(st.sampled_from(changes), max_size=12), label="redrive") if changes else []
    while old:
        size = data.draw(st.integers(1, len(old)), label="redrive batch")
        deliver(sorted(old[:size], key=lambda c: c.position.sort_key if c.position else ""))
        old = old[size:]

    orders = {c.keys["order_id"] for c in changes}
    for projection in projections:
        assert stored(client, config.aggregates_table, projection, keys_of(projection)) == expected(
            projection, live
        )
    if not with_tags:
        cleanup(client, config.aggregates_table, projections, orders)
        return
    records_agree_with_rows(client, config.aggregates_table, tags, orders)
    # every item can be removed, whatever its changes did against the limit
    removals = [
        Change(
            {"order_id": order_id},
            ChangeKind.REMOVE,
            None,
            dict(item),
            StreamPosition(created_at=1_800_000_000 + i, sequence=str(10**21 + i)),
        )
        for i, (order_id, item) in enumerate(sorted(live.items()))
    ]
    if removals:
        result = tag_sink.apply(tags, as_batch(removals), Deadline.after(60))
        assert not result.failed and not result.poison, (result.failed, result.poison)
    assert stored(client, config.aggregates_table, tags, TAG_KEYS) == expected(tags, {})
    cleanup(client, config.aggregates_table, [*projections, tags], orders)
