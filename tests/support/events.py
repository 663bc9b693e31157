"""Helpers for the event-sourced tests: an order-events runtime, random appends, and the truth by fold."""

from __future__ import annotations

from collections import defaultdict
from decimal import Decimal
from typing import Any

from projector.events import EventStore
from projector.events.fold import fold_all
from projector.events.projection import EventAggregateProjection, EventStreamProjection
from projector.records import decode_image
from projector.runtime import Runtime
from projector.setup import setup
from projector.sinks.aggregates import read_aggregate
from projector.sinks.opensearch.serializer import to_json
from projector.sinks.opensearch.types import META_FIELD

ORDER_EVENTS = "projections.order_events"


def events_runtime() -> Runtime:
    """A runtime over this test's events table (``settings_env`` + PROJECTOR_PROJECTIONS), set up."""
    engine = Runtime()
    setup(engine, with_source_table=True)
    return engine


def store(runtime: Runtime) -> EventStore:
    return EventStore(runtime.dynamodb, runtime.settings.source_table)


def table_items(runtime: Runtime) -> list[dict[str, Any]]:
    client = runtime.dynamodb
    items = []
    for page in client.get_paginator("scan").paginate(
        TableName=runtime.settings.source_table, ConsistentRead=True
    ):
        items.extend(decode_image(raw) for raw in page["Items"])
    return items


def expected_documents(projection: EventStreamProjection, items: list[dict[str, Any]]) -> dict[str, Any]:
    """The fold of every stream of the table, as JSON, by document id (None: ended)."""
    streams: dict[str, list[tuple[int, Any]]] = defaultdict(list)
    for item in items:
        event = projection.typed_event(item)
        streams[item["stream_id"]].append((int(item["version"]), event))
    expected = {}
    for stream_id, steps in streams.items():
        outcome = fold_all(projection, stream_id, sorted(steps, key=lambda step: step[0]))
        assert outcome.stop is None, f"{stream_id}: {outcome.stop}"
        state = outcome.state
        expected[projection.doc_id(stream_id)] = (
            state.version,
            to_json(state.document) if state.document else None,
        )
    return expected


def expected_sums(
    projection: EventAggregateProjection, items: list[dict[str, Any]]
) -> dict[str, dict[str, Decimal]]:
    sums: dict[str, dict[str, Decimal]] = defaultdict(lambda: defaultdict(Decimal))
    for item in items:
        for group, measures in projection.contributions(item).items():
            for name, value in measures.items():
                sums[group][name] += value
    return sums


def stored_documents(opensearch: Any, alias: str) -> dict[str, dict[str, Any]]:
    """Every document of the alias's index, tombstones included, by _id (with its meta)."""
    opensearch.indices.refresh(index=alias)
    index = next(iter(opensearch.indices.get_alias(name=alias)))
    opensearch.indices.refresh(index=index)
    response = opensearch.search(index=index, body={"query": {"match_all": {}}, "size": 10000}, version=True)
    return {hit["_id"]: {**hit["_source"], "_version": hit["_version"]} for hit in response["hits"]["hits"]}


def assert_exact(runtime: Runtime, opensearch: Any) -> None:
    """Every document equals the fold of its stream (version included), every aggregate the sum of events."""
    registry = runtime.registry
    items = table_items(runtime)
    views = registry.document("order_views")
    expected = expected_documents(views, items)
    stored = stored_documents(opensearch, runtime.settings.index_prefix + "order_views")
    assert set(stored) == set(expected)
    for doc_id, (version, body) in expected.items():
        document = dict(stored[doc_id])
        meta = document.pop(META_FIELD)
        assert document.pop("_version") == version, doc_id
        assert meta["rev"] == version, doc_id
        if body is None:
            assert meta["deleted"] and not meta["visible"], doc_id
        else:
            assert document == body, doc_id
    paid = registry.aggregate("paid_by_day")
    sums = expected_sums(paid, items)
    for day in {*sums, "2026-01-01", "2026-01-02", "2026-01-03"}:
        row = read_aggregate(runtime.dynamodb, runtime.settings, paid, day)
        want = sums.get(day, {})
        assert row["order_count"] == int(want.get("order_count", 0)), day
        assert Decimal(row["revenue"]) == want.get("revenue", Decimal(0)), day
