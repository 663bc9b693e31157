"""Tombstones, handler failures that hold a stream, and a redrive after the fix, on the real servers.

This module is also the projections module of its tests (PROJECTOR_PROJECTIONS = this module).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from pydantic import BaseModel

from projector.events import Event, EventStore, EventStreamProjection
from projector.events.fold import fold_all
from projector.redrive import redrive
from projector.retry import Deadline
from projector.sinks.opensearch.serializer import to_json
from tests.support.events import events_runtime, table_items
from tests.support.streams import capture_records

pytestmark = pytest.mark.integration

FIXED = {"exploded": False}


class Opened(BaseModel):
    n: Decimal


class Filled(BaseModel):
    n: Decimal


class Closed(BaseModel):
    pass


class Exploded(BaseModel):
    pass


def _exploded(state: dict[str, Any], event: Event) -> dict[str, Any]:
    if not FIXED["exploded"]:
        raise RuntimeError("handler bug")
    return {**state, "n": state["n"] * 2}


boxes = EventStreamProjection(
    name="boxes",
    key_attributes=("box",),
    category="box",
    version_field="version",
    initial=lambda stream_id: {"box": stream_id, "n": Decimal(0)},
    handlers={
        Opened: lambda state, event: {**state, "n": event.data.n},
        Filled: lambda state, event: {**state, "n": state["n"] + event.data.n},
        Closed: lambda state, event: None,
        Exploded: _exploded,
    },
    mappings={"properties": {"box": {"type": "keyword"}, "n": {"type": "long"}, "version": {"type": "long"}}},
)


@pytest.fixture
def runtime(settings_env: Any, monkeypatch: pytest.MonkeyPatch, opensearch: Any, dynamodb: Any) -> Any:
    monkeypatch.setenv("PROJECTOR_PROJECTIONS", __name__)
    monkeypatch.setitem(FIXED, "exploded", False)
    return events_runtime()


def _process(runtime: Any, records: list[dict[str, Any]]) -> Any:
    return runtime.stream_applier.apply(records, Deadline.after(60))


def _records(runtime: Any, streams: Any, stream_id: str) -> list[dict[str, Any]]:
    return [
        r
        for r in capture_records(runtime.dynamodb, streams, runtime.settings.source_table)
        if r["dynamodb"]["Keys"]["stream_id"]["S"] == stream_id
    ]


def test_a_tombstone_never_comes_back(runtime: Any, opensearch: Any, dynamodbstreams: Any) -> None:
    store = EventStore(runtime.dynamodb, runtime.settings.source_table)
    store.append(
        "box-1", [("Opened", {"n": 1}), ("Filled", {"n": 2}), ("Closed", {}), ("Filled", {"n": 5})], 0
    )
    records = _records(runtime, dynamodbstreams, "box-1")
    assert _process(runtime, records).first_failed is None
    alias = runtime.settings.index_prefix + "boxes"
    index = next(iter(opensearch.indices.get_alias(name=alias)))
    stored = opensearch.get(index=index, id="box-1")
    assert stored["_version"] == 4 and stored["_source"] == {
        "_projector": {
            "life": 0,
            "rev": 4,
            "deleted": True,
            "position": None,
            "seen_at": 0.0,
            "visible": False,
        }
    }
    for replay in (records[:1], records[:2], list(reversed(records))):  # older events, any order
        assert _process(runtime, replay).first_failed is None
    assert opensearch.get(index=index, id="box-1")["_version"] == 4
    opensearch.indices.refresh(index=alias)
    assert opensearch.count(index=alias)["count"] == 0  # readers never see it


def test_a_failing_handler_holds_its_stream_and_a_redrive_after_the_fix_completes_it(
    runtime: Any, opensearch: Any, dynamodbstreams: Any
) -> None:
    store = EventStore(runtime.dynamodb, runtime.settings.source_table)
    store.append(
        "box-2", [("Opened", {"n": 3}), ("Exploded", {}), ("Filled", {"n": 1}), ("Filled", {"n": 1})], 0
    )
    store.append("box-3", [("Opened", {"n": 7}), ("Filled", {"n": 1})], 0)
    records = [*_records(runtime, dynamodbstreams, "box-2"), *_records(runtime, dynamodbstreams, "box-3")]
    outcome = _process(runtime, records)
    assert outcome.first_failed is None  # nothing blocks the shard
    assert outcome.dead_lettered == 3
    letters = sorted(runtime.dead_letters.list(), key=lambda letter: letter.error)
    assert [letter.error.split(":")[0] for letter in letters] == ["held", "held", "projection failed"]
    assert all("box-2 stopped at version 1" in letter.error for letter in letters[:2])
    alias = runtime.settings.index_prefix + "boxes"
    assert opensearch.get(index=alias, id="box-2")["_source"]["version"] == 1  # stopped before the bug
    assert opensearch.get(index=alias, id="box-3")["_source"]["n"] == 8  # the other stream went on

    assert not any(result.redriven for result in redrive(runtime))  # still broken: nothing moves
    assert opensearch.get(index=alias, id="box-2")["_source"]["version"] == 1
    FIXED["exploded"] = True
    assert all(result.redriven for result in redrive(runtime))
    items = [item for item in table_items(runtime) if item["stream_id"] == "box-2"]
    steps = sorted((int(item["version"]), boxes.typed_event(item)) for item in items)
    expected = fold_all(boxes, "box-2", steps).state
    document = opensearch.get(index=alias, id="box-2")
    assert document["_version"] == 4
    body = dict(document["_source"])
    body.pop("_projector")
    assert body == to_json(expected.document) == {"box": "box-2", "n": 8, "version": 4}
