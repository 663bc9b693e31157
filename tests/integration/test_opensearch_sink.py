"""The OpenSearch sink against the real local OpenSearch: exact under replays, races, deletes and failures."""

from __future__ import annotations

import json
import math
import random
import time
from decimal import Decimal
from itertools import pairwise
from typing import TYPE_CHECKING, Any

import pytest
from opensearchpy import OpenSearch
from opensearchpy.exceptions import ConnectionTimeout

from projections.orders import ORDER_FIELDS, order_document, orders
from projector import DocumentProjection, StreamPositionVersion
from projector.changes.batch import ItemChanges, SinkResult
from projector.changes.types import Change, ChangeKind, StreamPosition
from projector.config.settings import Settings
from projector.retry.deadline import Deadline
from projector.retry.policy import RetryPolicy
from projector.sinks.opensearch import indexes
from projector.sinks.opensearch.client import build_client
from projector.sinks.opensearch.serializer import to_json
from projector.sinks.opensearch.types import META_FIELD, WriteLimits
from projector.sinks.opensearch.writer import OpenSearchSink

if TYPE_CHECKING:
    from tests.conftest import IsolatedEnv

pytestmark = pytest.mark.integration

FAST = RetryPolicy(max_attempts=4, initial_wait_s=0.01, max_wait_s=0.05, jitter_s=0.01)


# --------------------------------------------------------------------------- fixtures and builders


@pytest.fixture(scope="module")
def client(opensearch_server: str) -> OpenSearch:
    return build_client(Settings(opensearch_url=opensearch_server))


@pytest.fixture
def prefix(settings_env: IsolatedEnv) -> str:
    """A unique index prefix; conftest removes every index and template under it afterwards."""
    return settings_env.index_prefix


@pytest.fixture
def settings(prefix: str) -> Settings:
    return Settings(index_prefix=prefix)


@pytest.fixture
def sink(client: OpenSearch, settings: Settings) -> OpenSearchSink:
    indexes.ensure(client, orders, settings.index_prefix)
    return OpenSearchSink(client, settings, retry_policy=FAST)


class Stream:
    """Hands out increasing stream positions, like one DynamoDB shard."""

    def __init__(self, start: float = 1_790_000_000.0) -> None:
        self.now = start
        self.sequence = 100_000_000_000_000_000_000

    def next(self, seconds: float = 0.0) -> StreamPosition:
        self.now += seconds
        self.sequence += 17
        return StreamPosition(created_at=self.now, sequence=str(self.sequence))


def order(order_id: str, version: int, status: str = "PENDING", total: str = "120.50", **extra: Any) -> dict:
    line = {"sku": "MUG-1", "title": "Red enamel mug", "qty": Decimal(2), "price": Decimal("60.25")}
    item = {
        "order_id": order_id,
        "customer_id": f"c-{order_id[-1]}",
        "status": status,
        "total": Decimal(total),
        "currency": "EUR",
        "created_at": "2026-11-27T08:15:00Z",
        "version": Decimal(version),
        "items": [line],
    }
    return {**item, **extra}


def insert(image: dict, position: StreamPosition) -> Change:
    return Change(
        keys={"order_id": image["order_id"]},
        kind=ChangeKind.INSERT,
        new_image=image,
        old_image=None,
        position=position,
    )


def modify(old: dict, new: dict, position: StreamPosition) -> Change:
    return Change(
        keys={"order_id": new["order_id"]},
        kind=ChangeKind.MODIFY,
        new_image=new,
        old_image=old,
        position=position,
    )


def remove(old: dict, position: StreamPosition) -> Change:
    return Change(
        keys={"order_id": old["order_id"]},
        kind=ChangeKind.REMOVE,
        new_image=None,
        old_image=old,
        position=position,
    )


def grouped(projection: DocumentProjection, changes: list[Change]) -> list[ItemChanges]:
    items: dict[str, ItemChanges] = {}
    for index, change in enumerate(changes):
        change.batch_index = index
        item_id = projection.item_id(change.keys)
        items.setdefault(item_id, ItemChanges(item_id=item_id, changes=[])).changes.append(change)
    return list(items.values())


def apply(
    sink: OpenSearchSink,
    changes: list[Change],
    projection: DocumentProjection = orders,
    seconds: float = 30.0,
) -> SinkResult:
    return sink.apply(projection, grouped(projection, changes), Deadline.after(seconds))


def stored(client: OpenSearch, index: str, ids: list[str]) -> dict[str, tuple[int, dict]]:
    """Realtime (version, source) of every stored document among ``ids``, tombstones included."""
    docs = client.mget(index=index, body={"ids": ids}, realtime=True)["docs"]
    return {doc["_id"]: (doc["_version"], doc["_source"]) for doc in docs if doc.get("found")}


def visible(client: OpenSearch, alias: str, query: dict | None = None) -> tuple[dict[str, dict], int, int]:
    """What a plain client sees through the read alias: hits, search total and _count."""
    client.indices.refresh(index=alias)
    body = {"query": query or {"match_all": {}}, "size": 10_000, "track_total_hits": True}
    response = client.search(index=alias, body=body)
    assert all(hit["_source"][META_FIELD]["visible"] for hit in response["hits"]["hits"])
    hits = {
        hit["_id"]: {key: value for key, value in hit["_source"].items() if key != META_FIELD}
        for hit in response["hits"]["hits"]
    }
    count = client.count(index=alias, body={"query": body["query"]})["count"]
    return hits, response["hits"]["total"]["value"], count


def expected_document(image: dict) -> dict:
    return to_json(order_document(image))


class Spy:
    """Wraps a client, recording bulk bodies and counting calls; optional faults per bulk call."""

    def __init__(self, target: OpenSearch) -> None:
        self.target = target
        self.bulks: list[bytes] = []
        self.calls: list[str] = []
        self.bulk_faults: list[Any] = []
        self.mget_faults: list[Any] = []

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self.target, name)
        if name == "indices":
            spy = Spy(attribute)
            spy.calls = self.calls
            return spy
        if not callable(attribute):
            return attribute

        def call(*args: Any, **kwargs: Any) -> Any:
            self.calls.append(name)
            if name == "bulk":
                self.bulks.append(kwargs["body"])
                fault = self.bulk_faults.pop(0) if self.bulk_faults else None
                if fault is not None:
                    return fault(attribute, *args, **kwargs)
            if name == "mget" and self.mget_faults:
                fault = self.mget_faults.pop(0)
                if fault is not None:
                    return fault(attribute, *args, **kwargs)
            return attribute(*args, **kwargs)

        return call

    def actions(self, bulk: bytes) -> list[dict]:
        lines = bulk.decode().splitlines()
        return [json.loads(line)["index"] for line in lines[0::2]]


# --------------------------------------------------------------------------- 1. replays change nothing


def test_replaying_a_batch_any_number_of_times_changes_nothing(
    client: OpenSearch, sink: OpenSearchSink, prefix: str
) -> None:
    stream = Stream()
    a1, a2, b1, c1 = order("o-1", 1), order("o-1", 2, "PAID"), order("o-2", 1), order("o-3", 1)
    batch = [
        insert(a1, stream.next()),
        insert(b1, stream.next()),
        modify(a1, a2, stream.next()),
        insert(c1, stream.next()),
        remove(b1, stream.next(1)),
    ]
    first = apply(sink, batch)
    assert (first.applied, first.stale, first.failed, first.poison) == (5, 0, {}, [])
    before = stored(client, f"{prefix}orders", ["o-1", "o-2", "o-3"])
    assert before["o-1"][1] == {**expected_document(a2), META_FIELD: before["o-1"][1][META_FIELD]}
    assert before["o-2"][1][META_FIELD]["visible"] is False

    for _ in range(3):
        again = apply(sink, batch)
        assert (again.applied, again.stale, again.failed, again.poison) == (0, 5, {}, [])
        assert again.requests == 2  # the alias lookup and one mget: nothing newer, so no bulk at all
    for start in range(len(batch)):
        assert apply(sink, batch[start : start + 2]).applied == 0
    assert stored(client, f"{prefix}orders", ["o-1", "o-2", "o-3"]) == before


# --------------------------------------------------------------------------- 2. order, coalescing, chunks


def test_an_older_change_after_a_newer_one_never_overwrites(
    client: OpenSearch, sink: OpenSearchSink, prefix: str
) -> None:
    stream = Stream()
    v1, v2, v3 = order("o-1", 1), order("o-1", 2, "PAID"), order("o-1", 3, "SHIPPED")
    c1, c2, c3 = insert(v1, stream.next()), modify(v1, v2, stream.next()), modify(v2, v3, stream.next())
    assert apply(sink, [c1, c3]).applied == 2
    late = apply(sink, [c2])
    assert (late.applied, late.stale, late.failed) == (0, 1, {})
    version, source = stored(client, f"{prefix}orders", ["o-1"])["o-1"]
    assert source["status"] == "SHIPPED"
    assert version == orders_version(1, 3, deleted=False)


def orders_version(rev_life: int, rev: int, deleted: bool) -> int:
    from projector.versioning import ItemState, scheme_for

    state = ItemState(life=rev_life - 1, rev=rev, deleted=deleted, position=None, seen_at=0.0)
    return scheme_for(orders.version).external_version(state)


def test_a_racing_writer_is_caught_by_the_external_version(
    client: OpenSearch, settings: Settings, prefix: str
) -> None:
    """The mget misses a newer write (a concurrent Lambda): the 409 leads to a re-read, not a lost update."""
    indexes.ensure(client, orders, prefix)
    stream = Stream()
    v1, v2 = order("o-1", 1), order("o-1", 2, "PAID")
    c1, c2 = insert(v1, stream.next()), modify(v1, v2, stream.next())
    assert apply(OpenSearchSink(client, settings), [c2]).applied == 1
    spy = Spy(client)

    def blind_read(call: Any, *args: Any, **kwargs: Any) -> dict:
        return {"docs": [{"_id": doc_id, "found": False} for doc_id in kwargs["body"]["ids"]]}

    spy.mget_faults = [blind_read]
    result = apply(OpenSearchSink(spy, settings), [c1])  # type: ignore[arg-type]
    assert (result.applied, result.stale, result.failed) == (0, 1, {})
    assert spy.calls == ["get_alias", "mget", "bulk", "mget"]
    assert stored(client, f"{prefix}orders", ["o-1"])["o-1"][1]["status"] == "PAID"


def test_five_changes_of_one_item_become_one_bulk_action(
    client: OpenSearch, settings: Settings, prefix: str
) -> None:
    indexes.ensure(client, orders, prefix)
    spy = Spy(client)
    stream = Stream()
    images = [
        order("o-1", version, status)
        for version, status in enumerate(["PENDING", "PAID", "PAID", "SHIPPED", "SHIPPED"], start=1)
    ]
    changes = [insert(images[0], stream.next())]
    changes += [modify(old, new, stream.next()) for old, new in pairwise(images)]
    result = apply(OpenSearchSink(spy, settings), changes)  # type: ignore[arg-type]
    assert (result.applied, result.stale, result.requests) == (5, 0, 3)
    assert len(spy.bulks) == 1
    [action] = spy.actions(spy.bulks[0])
    assert action["_id"] == "o-1" and action["version_type"] == "external"
    assert stored(client, f"{prefix}orders", ["o-1"])["o-1"][1]["version"] == 5


def test_a_batch_of_many_items_is_one_bulk_per_size_limited_chunk(
    client: OpenSearch, settings: Settings, prefix: str
) -> None:
    indexes.ensure(client, orders, prefix)
    limit = 64 * 1024
    spy = Spy(client)
    sink = OpenSearchSink(spy, settings, limits=WriteLimits(max_request_bytes=limit))  # type: ignore[arg-type]
    stream = Stream()
    changes = [insert(order(f"o-{n:04d}", 1, note="word " * (n % 50)), stream.next()) for n in range(600)]
    result = apply(sink, changes)
    assert (result.applied, result.failed) == (600, {})
    sizes = [len(body) for body in spy.bulks]
    largest_action = max(len(line) for body in spy.bulks for line in body.split(b"\n")) * 2
    assert all(size <= limit for size in sizes)
    assert math.ceil(sum(sizes) / limit) <= len(sizes) <= math.ceil(sum(sizes) / (limit - largest_action))
    assert len(sizes) > 1
    assert sum(len(spy.actions(body)) for body in spy.bulks) == 600
    assert result.requests == 1 + 1 + len(sizes) == len(spy.calls)


# --------------------------------------------------------------------------- 3. deletes never come back


def test_deletes_never_come_back_after_gc_deletes(
    client: OpenSearch, sink: OpenSearchSink, prefix: str
) -> None:
    physical = indexes.read_index(client, orders, prefix)
    client.indices.put_settings(index=physical, body={"index": {"gc_deletes": "1s"}})
    stream = Stream()
    v1, v2 = order("o-1", 1, note="gone"), order("o-1", 2, "PAID", note="gone")
    old = [insert(v1, stream.next()), modify(v1, v2, stream.next())]
    assert apply(sink, old).applied == 2
    assert apply(sink, [remove(v2, stream.next())]).applied == 1
    time.sleep(2.5)
    client.indices.refresh(index=physical)
    client.indices.flush(index=physical)
    for replay in (old, old[:1], old[1:]):
        result = apply(sink, replay)
        assert (result.applied, result.failed) == (0, {})
    hits, total, count = visible(client, f"{prefix}orders", {"match": {"note": "gone"}})
    assert (hits, total, count) == ({}, 0, 0)
    assert visible(client, f"{prefix}orders")[1:] == (0, 0)
    version, tombstone = stored(client, physical, ["o-1"])["o-1"]
    assert tombstone == {META_FIELD: {**tombstone[META_FIELD], "visible": False, "deleted": True}}
    assert version == orders_version(1, 2, deleted=True)


def test_a_real_delete_is_forgotten_after_gc_deletes(
    client: OpenSearch, sink: OpenSearchSink, prefix: str
) -> None:
    """Why tombstones are documents: an external-versioned delete stops blocking once gc_deletes passed."""
    physical = indexes.read_index(client, orders, prefix)
    client.indices.put_settings(index=physical, body={"index": {"gc_deletes": "1s"}})
    body = {
        "order_id": "x",
        META_FIELD: {
            "life": 0,
            "rev": 1,
            "deleted": False,
            "position": None,
            "seen_at": 0.0,
            "visible": True,
        },
    }
    client.index(index=physical, id="x", body=body, version=5, version_type="external")
    client.delete(index=physical, id="x", version=6, version_type="external")
    time.sleep(2.5)
    client.indices.refresh(index=physical)
    client.index(index=physical, id="x", body=body, version=5, version_type="external")
    assert stored(client, physical, ["x"])["x"][0] == 5


# --------------------------------------------------------------------------- 4. re-creation


def test_recreated_item_shows_its_new_life_and_ignores_the_old_one(
    client: OpenSearch, sink: OpenSearchSink, prefix: str
) -> None:
    stream = Stream()
    old1, old2 = order("o-1", 1, total="10.00"), order("o-1", 2, "PAID", total="10.00")
    old_life = [insert(old1, stream.next()), modify(old1, old2, stream.next())]
    deleted = remove(old2, stream.next())
    new1 = order("o-1", 1, total="99.99", note="second life")
    reborn = insert(new1, stream.next(5))
    assert apply(sink, [*old_life, deleted]).applied == 3
    assert apply(sink, [reborn]).applied == 1
    hits, total, _ = visible(client, f"{prefix}orders")
    assert total == 1 and hits["o-1"] == expected_document(new1)
    for late in (old_life, [old_life[1]], [deleted], [*old_life, deleted]):
        result = apply(sink, late)
        assert (result.applied, result.failed) == (0, {})
    hits, total, _ = visible(client, f"{prefix}orders")
    assert total == 1 and hits["o-1"] == expected_document(new1)
    assert stored(client, f"{prefix}orders", ["o-1"])["o-1"][1][META_FIELD]["life"] == 1


def test_delete_and_recreation_inside_one_batch(
    client: OpenSearch, sink: OpenSearchSink, prefix: str
) -> None:
    stream = Stream()
    v1, v2 = order("o-1", 1), order("o-1", 1, "PAID", note="new life")
    batch = [insert(v1, stream.next()), remove(v1, stream.next()), insert(v2, stream.next())]
    assert apply(sink, batch).applied == 3
    assert visible(client, f"{prefix}orders")[0] == {"o-1": expected_document(v2)}


# --------------------------------------------------------------------------- 5. poison


def whole_item(item: dict[str, Any]) -> dict[str, Any]:
    return dict(item)


def test_poison_documents_are_reported_and_the_rest_applied(
    client: OpenSearch, settings: Settings, prefix: str
) -> None:
    loose = DocumentProjection(
        name="loose_orders", key_attributes=("order_id",), mappings=orders.mappings, document=whole_item
    )
    indexes.ensure(client, loose, prefix)
    sink = OpenSearchSink(client, settings, limits=WriteLimits(max_document_bytes=20_000), retry_policy=FAST)
    stream = Stream()
    good = order("o-good", 1)
    unmapped = order("o-unmapped", 1, coupon="XMAS")
    wrong_type = order("o-type", 1, total="1.00") | {"total": "a lot"}
    huge = order("o-huge", 1, note="x" * 30_000)
    inexact = order("o-inexact", 1, total="0.1000000000000000000001")
    v1, v2 = order("o-keep", 1), order("o-keep", 2, coupon="BROKEN")
    changes = [insert(image, stream.next()) for image in (good, unmapped, wrong_type, huge, inexact, v1)]
    changes.append(modify(v1, v2, stream.next()))
    result = apply(sink, changes, loose)
    assert result.failed == {}
    reasons = {change.keys["order_id"]: reason for change, reason in result.poison}
    assert set(reasons) == {"o-unmapped", "o-type", "o-huge", "o-inexact", "o-keep"}
    assert "strict_dynamic_mapping_exception" in reasons["o-unmapped"] and "coupon" in reasons["o-unmapped"]
    assert "mapper_parsing_exception" in reasons["o-type"]
    assert "exceeds the limit of 20000 bytes" in reasons["o-huge"]
    assert "cannot be represented exactly in a JSON double" in reasons["o-inexact"]
    assert [change.new_image for change, _ in result.poison if change.keys["order_id"] == "o-keep"] == [v2]
    assert result.applied == 2
    hits, _, _ = visible(client, f"{prefix}loose_orders")
    assert set(hits) == {"o-good", "o-keep"}
    assert hits["o-keep"]["version"] == 1


# --------------------------------------------------------------------------- 6. the read alias hides them


def hide_cancelled(item: dict[str, Any]) -> dict[str, Any] | None:
    return None if item["status"] == "CANCELLED" else order_document(item)


def test_the_read_alias_never_shows_tombstones_or_hidden_documents(
    client: OpenSearch, settings: Settings, prefix: str
) -> None:
    hiding = DocumentProjection(
        name="open_orders", key_attributes=("order_id",), mappings=orders.mappings, document=hide_cancelled
    )
    indexes.ensure(client, hiding, prefix)
    sink = OpenSearchSink(client, settings)
    stream = Stream()
    images = {n: order(f"o-{n}", 1, "PAID") for n in range(6)}
    changes = [insert(image, stream.next()) for image in images.values()]
    changes += [
        remove(images[0], stream.next()),
        remove(images[1], stream.next()),
        modify(images[2], order("o-2", 2, "CANCELLED"), stream.next()),
    ]
    assert apply(sink, changes, hiding).applied == 9
    alias = f"{prefix}open_orders"
    everything_but_paid = {"bool": {"must_not": {"term": {"status": "PAID"}}}}
    assert visible(client, alias, everything_but_paid) == ({}, 0, 0)
    hits, total, count = visible(client, alias)
    assert set(hits) == {"o-3", "o-4", "o-5"} and total == count == 3
    physical = indexes.read_index(client, hiding, prefix)
    assert client.count(index=physical)["count"] == 6


# --------------------------------------------------------------------------- 7. stream-position versions

EVENTS = DocumentProjection(
    name="events",
    key_attributes=("order_id",),
    version=StreamPositionVersion(),
    mappings={"properties": {"order_id": {"type": "keyword"}, "step": {"type": "long"}}},
    document=lambda item: {"order_id": item["order_id"], "step": item["step"]},
)


def test_stream_position_versions_order_same_second_changes(
    client: OpenSearch, settings: Settings, prefix: str
) -> None:
    indexes.ensure(client, EVENTS, prefix)
    sink = OpenSearchSink(client, settings)
    second = 1_790_000_000.4
    positions = [StreamPosition(second, str(4_000_000_000_000_000_000_000 + n)) for n in (5, 6, 7)]
    positions.append(StreamPosition(second + 1, "4000000000000000000000003"))
    steps = [{"order_id": "e-1", "step": Decimal(n)} for n in range(4)]
    changes = [insert(steps[0], positions[0])]
    changes += [modify(steps[n - 1], steps[n], positions[n]) for n in (1, 2, 3)]
    assert apply(sink, [changes[2]], EVENTS).applied == 1
    result = apply(sink, [changes[0], changes[1]], EVENTS)
    assert (result.applied, result.stale) == (0, 2)
    assert visible(client, f"{prefix}events")[0] == {"e-1": {"order_id": "e-1", "step": 2}}
    assert apply(sink, [changes[3]], EVENTS).applied == 1  # a later second wins over a bigger sequence number
    assert apply(sink, changes[:3], EVENTS).applied == 0
    gone = StreamPosition(second + 1, "4000000000000000000000004")
    assert apply(sink, [remove(steps[3], gone)], EVENTS).applied == 1
    assert apply(sink, changes, EVENTS).applied == 0
    assert visible(client, f"{prefix}events")[1] == 0
    back = StreamPosition(second + 1, "4000000000000000000000009")
    assert apply(sink, [insert({"order_id": "e-1", "step": Decimal(9)}, back)], EVENTS).applied == 1
    assert visible(client, f"{prefix}events")[0] == {"e-1": {"order_id": "e-1", "step": 9}}


# --------------------------------------------------------------------------- 8. a 10,000-change batch


def test_a_ten_thousand_change_batch_lands_exactly(
    client: OpenSearch, settings: Settings, prefix: str
) -> None:
    indexes.ensure(client, orders, prefix)
    spy = Spy(client)
    sink = OpenSearchSink(spy, settings)  # type: ignore[arg-type]
    rng = random.Random(7)
    stream = Stream()
    final: dict[str, dict | None] = {}
    changes: list[Change] = []
    current: dict[str, dict] = {}
    order_ids = [f"o-{n:05d}" for n in range(2000)]
    while len(changes) < 10_000:
        order_id = rng.choice(order_ids)
        image = current.get(order_id)
        if image is None:
            version = 1
            new = order(order_id, version, total=f"{rng.randint(1, 99999) / 100:.2f}")
            changes.append(insert(new, stream.next()))
        elif rng.random() < 0.1:
            changes.append(remove(image, stream.next()))
            current.pop(order_id)
            final[order_id] = None
            continue
        else:
            status = rng.choice(["PAID", "SHIPPED", "CANCELLED"])
            version = image["version"] + 1
            new = {**image, "version": version, "status": status, "note": f"update {version}"}
            changes.append(modify(image, new, stream.next()))
        current[order_id] = new
        final[order_id] = new
    result = apply(sink, changes, seconds=120)
    assert (result.applied, result.stale, result.failed, result.poison) == (10_000, 0, {}, [])
    mgets, bulks = spy.calls.count("mget"), spy.calls.count("bulk")
    assert result.requests == 1 + mgets + bulks == len(spy.calls)
    assert (mgets, bulks) == (1, 1)
    hits, total, count = visible(client, f"{prefix}orders")
    live = {order_id: expected_document(image) for order_id, image in final.items() if image is not None}
    assert total == count == len(live)
    assert hits == live
    assert all(set(hit) <= set(ORDER_FIELDS) for hit in hits.values())
    again = apply(sink, changes, seconds=120)
    assert (again.applied, again.stale) == (0, 10_000)


# --------------------------------------------------------------------------- 9. failures


def test_an_unreachable_server_fails_the_items_within_the_deadline(settings: Settings) -> None:
    dead = Settings(
        opensearch_url="http://127.0.0.1:1", index_prefix=settings.index_prefix, opensearch_timeout_s=1
    )
    sink = OpenSearchSink(build_client(dead), dead)
    stream = Stream()
    changes = [insert(order(f"o-{n}", 1), stream.next()) for n in range(3)]
    started = time.monotonic()
    result = apply(sink, changes, seconds=1.5)
    elapsed = time.monotonic() - started
    assert elapsed < 2.0
    assert set(result.failed) == {"o-0", "o-1", "o-2"}
    assert "ConnectionError" in result.failed["o-0"]
    assert (result.applied, result.poison) == (0, [])
    assert result.requests >= 2


def test_throttled_items_alone_are_retried(client: OpenSearch, settings: Settings, prefix: str) -> None:
    indexes.ensure(client, orders, prefix)
    spy = Spy(client)

    def throttle_first(call: Any, *args: Any, **kwargs: Any) -> dict:
        body: bytes = kwargs["body"]
        lines = body.split(b"\n")
        answer = call(body=b"\n".join(lines[2:]), request_timeout=kwargs["request_timeout"])
        first = {
            "index": {
                "_id": json.loads(lines[0])["index"]["_id"],
                "status": 429,
                "error": {"type": "es_rejected_execution_exception", "reason": "queue full"},
            }
        }
        return {**answer, "errors": True, "items": [first, *answer["items"]]}

    spy.bulk_faults = [throttle_first]
    stream = Stream()
    changes = [insert(order(f"o-{n}", 1), stream.next()) for n in range(4)]
    result = apply(OpenSearchSink(spy, settings, retry_policy=FAST), changes)  # type: ignore[arg-type]
    assert (result.applied, result.failed) == (4, {})
    assert [len(spy.actions(body)) for body in spy.bulks] == [4, 1]
    assert visible(client, f"{prefix}orders")[1] == 4


def test_a_lost_answer_is_retried_and_counted_once(
    client: OpenSearch, settings: Settings, prefix: str
) -> None:
    """The bulk lands but its answer is lost: the retry gets 409s, finds its own writes, counts them once."""
    indexes.ensure(client, orders, prefix)
    spy = Spy(client)

    def land_then_time_out(call: Any, *args: Any, **kwargs: Any) -> dict:
        call(*args, **kwargs)
        raise ConnectionTimeout("TIMEOUT", "read timed out", None)

    spy.bulk_faults = [land_then_time_out]
    stream = Stream()
    changes = [insert(order(f"o-{n}", 1), stream.next()) for n in range(3)]
    result = apply(OpenSearchSink(spy, settings, retry_policy=FAST), changes)  # type: ignore[arg-type]
    assert (result.applied, result.stale, result.failed) == (3, 0, {})
    assert spy.calls == ["get_alias", "mget", "bulk", "bulk", "mget"]


def test_a_missing_write_alias_is_created_by_the_sink(
    client: OpenSearch, settings: Settings, prefix: str
) -> None:
    fresh = DocumentProjection(
        name="fresh_orders", key_attributes=("order_id",), mappings=orders.mappings, document=order_document
    )
    stream = Stream()
    result = apply(OpenSearchSink(client, settings), [insert(order("o-1", 1), stream.next())], fresh)
    assert (result.applied, result.failed) == (1, {})
    assert indexes.read_index(client, fresh, prefix) == f"{prefix}fresh_orders-g000001"
    assert set(visible(client, f"{prefix}fresh_orders")[0]) == {"o-1"}


def test_read_states_and_documents_include_tombstones(sink: OpenSearchSink) -> None:
    stream = Stream()
    v1, v2 = order("o-1", 1), order("o-2", 1)
    changes = [insert(v1, stream.next()), insert(v2, stream.next()), remove(v1, stream.next())]
    assert apply(sink, changes).applied == 3
    states = sink.read_states(orders, ["o-1", "o-2", "o-3"])
    assert set(states) == {"o-1", "o-2"}
    assert (states["o-1"].deleted, states["o-1"].rev, states["o-2"].deleted) == (True, 1, False)
    documents = sink.read_documents(orders, ["o-1", "o-2"])
    assert (documents["o-1"].visible, documents["o-1"].source) == (False, {})
    assert (documents["o-2"].visible, documents["o-2"].source) == (True, expected_document(v2))
