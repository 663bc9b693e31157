"""Property: under any delivery of a history, every aggregate equals a recomputation from the live items.

Histories over a few dozen orders (inserts, modifies with group moves and cancellations, removes,
re-creations whose version restarts at 1 later in the stream) are delivered in stream order in random
batches, with duplicates inside batches, re-deliveries of earlier batches, batches applied by two
writers racing, tiny transactions (forcing split components) and a late redrive of old changes in
random order. Runs against the moto server; one table for the module, fresh projection names per example.
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
from projector.clients import dynamodb_client
from projector.config import Settings
from projector.projection.base import AggregateProjection
from projector.retry import Deadline
from projector.sinks.aggregates import AggregateSink, ensure_table, render_measure
from projector.sinks.aggregates.types import group_pk, item_pk, meta_pk
from projector.sinks.base import ItemChanges

pytestmark = pytest.mark.integration

ENDPOINT = os.environ.get("PROJECTOR_DYNAMODB_ENDPOINT", "http://127.0.0.1:5000")
CUSTOMERS = ("ada", "bob", "cy", "dee")
DAYS = ("2024-02-28", "2024-02-29", "2024-03-01")
STATUSES = ("PENDING", "PAID", "SHIPPED", "CANCELLED")
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


def history(steps: list[tuple[int, bool, int, int, int, int]]) -> tuple[list[Change], dict[str, dict]]:
    """Stream changes of the steps applied to an empty table, and the live items at the end."""
    items: dict[str, dict[str, Any]] = {}
    changes: list[Change] = []
    for sequence, (order, remove, customer, status, cents, day) in enumerate(steps, start=1):
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
            "total": Decimal(cents) / 100,
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
                totals[group][name] += value
    keys = CUSTOMERS if projection.group_name == "customer_id" else DAYS
    return {
        key: {name: render_measure(m, totals[key][name]) for name, m in projection.measures.items()}
        for key in keys
    }


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
    keys += [(group_pk(p.name, key), "g1") for p in projections for key in CUSTOMERS + DAYS]
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
    ),
    min_size=1,
    max_size=60,
)


@settings(
    max_examples=int(os.environ.get("AGGREGATE_PROPERTY_EXAMPLES", "175")),
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
    changes, live = history(steps)
    limit = data.draw(st.sampled_from([100, 100, 4]), label="max transaction actions")
    sink = AggregateSink(client, config, max_actions=limit)

    def deliver(delivery: list[Change], racing: bool = False) -> None:
        for projection in projections:
            if not racing:
                result = sink.apply(projection, as_batch(delivery), Deadline.after(60))
                assert not result.failed and not result.poison, (result.failed, result.poison)
                continue
            results = race(sink, projection, delivery)
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

    for projection in projections:
        keys = CUSTOMERS if projection.group_name == "customer_id" else DAYS
        assert stored(client, config.aggregates_table, projection, keys) == expected(projection, live)
    cleanup(client, config.aggregates_table, projections, {c.keys["order_id"] for c in changes})
