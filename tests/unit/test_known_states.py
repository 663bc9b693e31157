"""Remembered states (projector/sinks/opensearch/known.py) never make the OpenSearch sink wrong.

Two sinks, each with its own memory of stored states, write overlapping items of one true history in
random interleavings: replays, redrives of single records, a batch of one sink landing between the
other's read and its bulk write, and the index deleted and re-created under the same name. An in-memory
fake OpenSearch implements what the sink relies on: external versioning (a write must carry a version
strictly above the stored one, else 409) and a fresh uuid per created index. After a final in-order
delivery of the whole history, every item's stored document is the one its newest change renders
(a tombstone after a REMOVE), exactly as a sink without memory leaves it.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import replace
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from projections.orders import orders
from projector.changes import Change, ChangeKind, StreamPosition
from projector.changes.batch import ItemChanges
from projector.config import Settings
from projector.retry.deadline import Deadline
from projector.sinks.opensearch.known import KnownStates
from projector.sinks.opensearch.serializer import dumps
from projector.sinks.opensearch.types import META_FIELD
from projector.sinks.opensearch.writer import OpenSearchSink

pytestmark = pytest.mark.unit

PREFIX = "fake-"
INDEX = f"{PREFIX}orders-g000001"
ITEMS = ("o-1", "o-2", "o-3")


class FakeIndices:
    def __init__(self, server: FakeOpenSearch) -> None:
        self.server = server

    def get_alias(self, name: str, **_: Any) -> dict[str, Any]:
        return {INDEX: {"aliases": {f"{PREFIX}orders": {}, f"{PREFIX}orders-write": {}}}}

    def get_settings(self, index: str, name: str, **_: Any) -> dict[str, Any]:
        assert index == INDEX and name == "index.uuid"
        return {INDEX: {"settings": {"index": {"uuid": self.server.uuid}}}}


class FakeOpenSearch:
    """One index: documents with external versions; ``recreate`` drops it and makes it anew (new uuid)."""

    def __init__(self) -> None:
        self.indices = FakeIndices(self)
        self.docs: dict[str, tuple[int, dict[str, Any]]] = {}
        self.uuid = uuid.uuid4().hex
        self.before_bulk: list[Any] = []  # callables run once, between a sink's read and its write
        self.mgets = 0

    def recreate(self) -> None:
        self.docs, self.uuid = {}, uuid.uuid4().hex

    def mget(self, index: str, body: dict[str, Any], **_: Any) -> dict[str, Any]:
        self.mgets += 1
        docs = []
        for doc_id in body["ids"]:
            found = self.docs.get(doc_id)
            if found is None:
                docs.append({"_index": index, "_id": doc_id, "found": False})
            else:
                meta = {META_FIELD: found[1][META_FIELD]}
                docs.append(
                    {"_index": index, "_id": doc_id, "found": True, "_version": found[0], "_source": meta}
                )
        return {"docs": docs}

    def bulk(self, index: str, body: bytes, **_: Any) -> dict[str, Any]:
        while self.before_bulk:
            self.before_bulk.pop(0)()
        lines = body.decode().splitlines()
        items = []
        for action_line, source_line in zip(lines[::2], lines[1::2], strict=True):
            action = json.loads(action_line)["index"]
            assert action["version_type"] == "external"
            stored = self.docs.get(action["_id"])
            if stored is not None and stored[0] >= action["version"]:
                items.append({"index": {"_id": action["_id"], "status": 409, "error": {"type": "conflict"}}})
                continue
            self.docs[action["_id"]] = (action["version"], json.loads(source_line))
            items.append({"index": {"_id": action["_id"], "status": 201}})
        return {"errors": False, "items": items}


def order(order_id: str, life: int, version: int) -> dict[str, Any]:
    return {
        "order_id": order_id,
        "customer_id": f"c-{life}",
        "status": ["PENDING", "PAID", "SHIPPED"][version % 3],
        "total": Decimal(10 * life + version),
        "currency": "EUR",
        "created_at": "2026-11-27T08:15:00Z",
        "version": Decimal(version),
        "items": [],
    }


@st.composite
def histories(draw: st.DrawFn) -> list[Change]:
    """The true history of every item, interleaved on one stream: lives of 1-3 versions, deletes, re-creations."""
    steps = draw(st.lists(st.sampled_from(ITEMS), min_size=1, max_size=24))
    state: dict[str, tuple[int, int, bool]] = {}  # life, version, live
    changes = []
    second, sequence = 1_790_000_000.0, 10**20
    for item in steps:
        life, version, live = state.get(item, (0, 0, False))
        old = order(item, life, version) if live else None
        if not live:
            life, version, kind = life + 1, 1, ChangeKind.INSERT
        elif draw(st.integers(0, 3)) == 0:
            kind = ChangeKind.REMOVE
        else:
            version, kind = version + 1, ChangeKind.MODIFY
        second += draw(st.sampled_from((0.0, 0.0, 1.0)))
        sequence += 17
        new = None if kind is ChangeKind.REMOVE else order(item, life, version)
        position = StreamPosition(created_at=second, sequence=str(sequence))
        changes.append(Change({"order_id": item}, kind, new, old, position=position))
        state[item] = (life, version, kind is not ChangeKind.REMOVE)
    return changes


def batch_of(changes: list[Change]) -> list[ItemChanges]:
    items: dict[str, ItemChanges] = {}
    for index, change in enumerate(changes):
        change = replace(change, batch_index=index)
        item_id = orders.item_id(change.keys)
        items.setdefault(item_id, ItemChanges(item_id=item_id, changes=[])).changes.append(change)
    return list(items.values())


def deliver(sink: OpenSearchSink, changes: list[Change]) -> None:
    if changes:
        result = sink.apply(orders, batch_of(changes), Deadline.after(30))
        assert not result.failed and not result.poison, (result.failed, result.poison)


step = st.tuples(
    st.sampled_from(("replay", "picks", "interleave", "recreate")),
    st.integers(0, 1),
    st.integers(0, 30),
    st.integers(1, 8),
    st.lists(st.integers(0, 30), max_size=4),
)


def sink_pair(server: FakeOpenSearch) -> list[OpenSearchSink]:
    config = Settings(index_prefix=PREFIX, opensearch_url="http://127.0.0.1:9")
    return [OpenSearchSink(server, config, known=KnownStates(capacity=4)) for _ in range(2)]  # type: ignore[arg-type]


def expected(history: list[Change]) -> dict[str, dict[str, Any] | None]:
    last = {orders.item_id(change.keys): change for change in history}
    return {
        item_id: None
        if change.kind is ChangeKind.REMOVE
        else json.loads(dumps(orders.document(change.new_image)))
        for item_id, change in last.items()
    }


def stored_documents(server: FakeOpenSearch) -> dict[str, dict[str, Any] | None]:
    out: dict[str, dict[str, Any] | None] = {}
    for doc_id, (_, source) in server.docs.items():
        meta = source[META_FIELD]
        body = {key: value for key, value in source.items() if key != META_FIELD}
        out[doc_id] = body if meta["visible"] and not meta["deleted"] else None
    return out


@settings(max_examples=150, deadline=None)
@given(history=histories(), steps=st.lists(step, max_size=12), closer=st.integers(0, 1))
def test_racing_sinks_with_stale_memories_end_at_the_newest_change(
    history: list[Change], steps: list[tuple[str, int, int, int, list[int]]], closer: int
) -> None:
    server = FakeOpenSearch()
    sinks = sink_pair(server)
    for kind, who, start, length, picks in steps:
        start %= len(history)
        if kind == "replay":  # a batch or a resent suffix, in stream order
            deliver(sinks[who], history[start : start + length])
        elif kind == "picks":  # redrives of single dead-lettered records, in any order
            for pick in picks:
                deliver(sinks[who], [history[pick % len(history)]])
        elif kind == "interleave":  # the other sink's batch lands between this one's read and write
            other = history[(start + length) % len(history) :][:length]
            server.before_bulk.append(lambda other=other, peer=sinks[1 - who]: deliver(peer, other))
            deliver(sinks[who], history[start : start + length])
            server.before_bulk.clear()
        else:
            server.recreate()
    deliver(sinks[closer], history)  # the stream read in order once, as it always eventually is

    assert stored_documents(server) == expected(history)


def test_known_ids_are_not_read_again_and_a_recreated_index_is_read() -> None:
    server = FakeOpenSearch()
    sink = sink_pair(server)[0]
    position = StreamPosition(created_at=1_790_000_000.0, sequence="1000")
    first = Change({"order_id": "o-1"}, ChangeKind.INSERT, order("o-1", 1, 1), None, position=position)
    deliver(sink, [first])
    assert server.mgets == 1
    later = replace(position, sequence="2000")
    deliver(
        sink,
        [Change({"order_id": "o-1"}, ChangeKind.MODIFY, order("o-1", 1, 2), first.new_image, position=later)],
    )
    assert server.mgets == 1  # the state this sink wrote was remembered: no read
    assert stored_documents(server)["o-1"] == json.loads(dumps(orders.document(order("o-1", 1, 2))))

    server.recreate()  # same name, new index: nothing remembered may be trusted
    deliver(sink, [first])
    assert server.mgets == 2
    assert stored_documents(server)["o-1"] == json.loads(dumps(orders.document(order("o-1", 1, 1))))


def test_the_memory_is_bounded_least_recently_used_first() -> None:
    from projector.versioning import ItemState

    known = KnownStates(capacity=2)
    state = ItemState(life=1, rev=1, deleted=False, position=None, seen_at=0.0)
    known.remember("u", "a", state)
    known.remember("u", "b", state)
    assert known.get("u", "a") == state  # a is now the most recent
    known.remember("u", "c", state)
    assert (known.get("u", "a"), known.get("u", "b"), known.get("u", "c")) == (state, None, state)
    assert known.get("other-uuid", "a") is None and len(known) == 2


def lives(item: str, count: int) -> list[Change]:
    """INSERT, REMOVE, INSERT, ... of ``item`` over ``count`` lives (version 1 each), one stream."""
    changes = []
    for number in range(1, 2 * count):
        life = (number + 1) // 2
        position = StreamPosition(created_at=1_790_000_000.0, sequence=str(1000 + number))
        if number % 2:
            changes.append(
                Change({"order_id": item}, ChangeKind.INSERT, order(item, life, 1), None, position=position)
            )
        else:
            changes.append(
                Change({"order_id": item}, ChangeKind.REMOVE, None, order(item, life, 1), position=position)
            )
    return changes


def test_a_conflict_rereads_instead_of_trusting_the_memory_again() -> None:
    """A remembers life 1; B stored life 3; A's batch ends life 3 and starts life 4: only a re-read after
    the 409 counts the lives right (from its memory A would write life 2, below the stored life 3)."""
    server = FakeOpenSearch()
    a, b = sink_pair(server)
    history = lives("o-1", 4)  # I1 R1 I2 R2 I3 R3 I4
    deliver(a, history[:1])
    deliver(b, history[:5])
    deliver(a, history[5:])
    assert stored_documents(server) == expected(history)
