"""Issue 14, case 2 (OpenSearch): keys longer than a document ``_id`` may be (512 bytes) never fail a batch.

Such keys get a stable short id (``~sha256~`` + digest) while the full key stays in the document and its
meta; reads, verify, search and deletes work on them; short keys keep their ids. And a document that
OpenSearch refuses on its own, even when it makes the whole ``_bulk`` request fail, is the only poison.
"""

from __future__ import annotations

import hashlib
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import pytest
from opensearchpy import OpenSearch

from projections.orders import orders
from projector import DocumentProjection
from projector.changes.types import Change, ChangeKind
from projector.config.settings import Settings
from projector.query import search
from projector.retry.deadline import Deadline
from projector.runtime import Runtime
from projector.sinks.opensearch import indexes
from projector.sinks.opensearch import writer as writer_module
from projector.sinks.opensearch.client import build_client
from projector.sinks.opensearch.types import META_FIELD
from projector.sinks.opensearch.writer import OpenSearchSink
from tests.integration.test_backfill import ready_runtime, verify
from tests.integration.test_exactness_rebuild import Stream as TableStream
from tests.integration.test_opensearch_sink import (
    FAST,
    Stream,
    apply,
    grouped,
    insert,
    modify,
    order,
    remove,
    stored,
    visible,
)

if TYPE_CHECKING:
    from tests.conftest import IsolatedEnv

pytestmark = pytest.mark.integration

LONG_ASCII = "A" * 600  # 600 bytes
LONG_CJK = "订单" * 100  # 200 characters, 600 UTF-8 bytes
HASHED = "~sha256~"


def hashed_id(item_id: str) -> str:
    return HASHED + hashlib.sha256(item_id.encode()).hexdigest()


@pytest.fixture(scope="module")
def client(opensearch_server: str) -> OpenSearch:
    return build_client(Settings(opensearch_url=opensearch_server))


@pytest.fixture
def settings(settings_env: IsolatedEnv) -> Settings:
    return Settings(index_prefix=settings_env.index_prefix)


@pytest.fixture
def sink(client: OpenSearch, settings: Settings) -> OpenSearchSink:
    indexes.ensure(client, orders, settings.index_prefix)
    return OpenSearchSink(client, settings, retry_policy=FAST)


def test_oversized_string_keys_land_with_the_rest_of_their_batch(
    client: OpenSearch, sink: OpenSearchSink, settings: Settings
) -> None:
    stream = Stream()
    alias = f"{settings.index_prefix}orders"
    short, ascii_v1, cjk_v1 = order("o-1", 1), order(LONG_ASCII, 1), order(LONG_CJK, 1)
    ascii_v2 = order(LONG_ASCII, 2, "PAID")
    batch = [insert(short, stream.next()), insert(ascii_v1, stream.next()), insert(cjk_v1, stream.next())]
    batch.append(modify(ascii_v1, ascii_v2, stream.next()))
    result = apply(sink, batch)
    assert (result.applied, result.failed, result.poison) == (4, {}, [])

    # short keys keep their id; long ones get the hashed form, the full key stays in body and meta
    found = stored(client, alias, ["o-1", hashed_id(LONG_ASCII), hashed_id(LONG_CJK)])
    assert set(found) == {"o-1", hashed_id(LONG_ASCII), hashed_id(LONG_CJK)}
    assert "key" not in found["o-1"][1][META_FIELD]
    assert found[hashed_id(LONG_ASCII)][1][META_FIELD]["key"] == LONG_ASCII
    assert found[hashed_id(LONG_ASCII)][1]["order_id"] == LONG_ASCII
    assert found[hashed_id(LONG_ASCII)][1]["status"] == "PAID"
    assert found[hashed_id(LONG_CJK)][1][META_FIELD]["key"] == LONG_CJK

    # reads by item id see them; a replay is stale; a delete hides them for good
    documents = sink.read_documents(orders, [LONG_ASCII, LONG_CJK, "o-1"])
    assert set(documents) == {LONG_ASCII, LONG_CJK, "o-1"} and documents[LONG_ASCII].state.rev == 2
    again = apply(sink, batch)
    assert (again.applied, again.stale, again.failed) == (0, 4, {})
    assert apply(sink, [remove(ascii_v2, stream.next())]).applied == 1
    assert apply(sink, [batch[3]]).applied == 0  # the old MODIFY, resent
    hits, total, count = visible(client, alias)
    assert {doc["order_id"] for doc in hits.values()} == {"o-1", LONG_CJK}
    assert total == count == 2


def binary_projection() -> DocumentProjection:
    return DocumentProjection(
        name="blobs",
        key_attributes=("pk", "sk"),
        mappings={
            "properties": {"pk": {"type": "keyword"}, "sk": {"type": "keyword"}, "version": {"type": "long"}}
        },
        document=lambda item: {"pk": item["pk"].hex(), "sk": item["sk"], "version": item["version"]},
    )


def blob_change(pk: bytes, sk: str, version: int, kind: ChangeKind, stream: Stream) -> Change:
    image = {"pk": pk, "sk": sk, "version": Decimal(version)}
    return Change(
        keys={"pk": pk, "sk": sk},
        kind=kind,
        new_image=None if kind is ChangeKind.REMOVE else image,
        old_image=image if kind is ChangeKind.REMOVE else None,
        position=stream.next(),
    )


def test_binary_and_composite_keys_over_the_limit_are_hashed_and_stay_apart(
    client: OpenSearch, settings: Settings
) -> None:
    blobs = binary_projection()
    indexes.ensure(client, blobs, settings.index_prefix)
    sink = OpenSearchSink(client, settings, retry_policy=FAST)
    stream = Stream()
    long_bytes = bytes(range(256)) * 2 + b"\x01" * 100  # 612 bytes, 1224 hex characters
    changes = [
        blob_change(long_bytes, "a", 1, ChangeKind.INSERT, stream),
        blob_change(long_bytes, "b", 1, ChangeKind.INSERT, stream),  # same long pk, other sort key
        blob_change(b"\x00\x01", "x" * 600, 1, ChangeKind.INSERT, stream),
        blob_change(b"\x00\x01", "short", 1, ChangeKind.INSERT, stream),
    ]
    result = sink.apply(blobs, grouped(blobs, changes), Deadline.after(30))
    assert (result.applied, result.failed, result.poison) == (4, {}, [])
    ids = [blobs.item_id(change.keys) for change in changes]
    assert len(set(ids)) == 4
    documents = sink.read_documents(blobs, ids)
    assert set(documents) == set(ids)
    hits, total, _ = visible(client, f"{settings.index_prefix}blobs")
    assert total == 4
    assert sorted(hit["sk"] for hit in hits.values()) == sorted(["a", "b", "x" * 600, "short"])
    assert blobs.item_id(changes[3].keys) in hits  # the short composite key keeps its natural id
    gone = sink.apply(
        blobs,
        grouped(blobs, [blob_change(long_bytes, "b", 2, ChangeKind.REMOVE, stream)]),
        Deadline.after(30),
    )
    assert gone.applied == 1
    hits, total, _ = visible(client, f"{settings.index_prefix}blobs")
    assert total == 3 and "b" not in {hit["sk"] for hit in hits.values()}


def test_a_document_refused_alone_is_the_only_poison_even_when_the_whole_request_fails(
    client: OpenSearch, sink: OpenSearchSink, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With the id mapping switched off, a 600-byte ``_id`` makes OpenSearch refuse the whole ``_bulk``
    (400, action_request_validation_exception): the writer splits the request until that item is alone."""
    monkeypatch.setattr(writer_module, "document_id", lambda item_id: item_id, raising=False)
    stream = Stream()
    images = [order(f"o-{n}", 1) for n in range(7)] + [order(LONG_ASCII, 1)]
    result = apply(sink, [insert(image, stream.next()) for image in images])
    assert result.failed == {}
    assert [change.keys["order_id"] for change, _ in result.poison] == [LONG_ASCII]
    assert result.applied == 7
    hits, total, _ = visible(client, f"{settings.index_prefix}orders")
    assert total == 7 and LONG_ASCII not in {doc["order_id"] for doc in hits.values()}


# --------------------------------------------------------------------------- end to end


@pytest.fixture
def runtime(settings_env: Any, opensearch: Any, dynamodb: Any) -> Runtime:
    return ready_runtime()


def put_order(dynamodb: Any, table: str, order_id: str, version: int, status: str = "PAID") -> dict[str, Any]:
    image = order(order_id, version, status)
    item = {
        "order_id": {"S": order_id},
        "customer_id": {"S": image["customer_id"]},
        "status": {"S": status},
        "total": {"N": str(image["total"])},
        "currency": {"S": "EUR"},
        "created_at": {"S": image["created_at"]},
        "version": {"N": str(version)},
        "items": {
            "L": [
                {
                    "M": {
                        "sku": {"S": "MUG-1"},
                        "title": {"S": "Red enamel mug"},
                        "qty": {"N": "2"},
                        "price": {"N": "60.25"},
                    }
                }
            ]
        },
    }
    dynamodb.put_item(TableName=table, Item=item)
    return image


def test_long_keys_through_the_stream_search_and_verify(
    runtime: Runtime, dynamodb: Any, dynamodbstreams: Any
) -> None:
    table = runtime.settings.source_table
    stream = TableStream(runtime, dynamodb, dynamodbstreams)
    for order_id in ("o-short", LONG_ASCII, LONG_CJK):
        put_order(dynamodb, table, order_id, 1)
    put_order(dynamodb, table, LONG_CJK, 2, "SHIPPED")
    stream.apply_new()  # asserts that no record failed
    runtime.opensearch.indices.refresh(index=runtime.settings.index_prefix + "orders")
    found = search(runtime.opensearch, runtime.settings, "orders", where=["status=SHIPPED"])
    assert [hit.order_id for hit in found.hits] == [LONG_CJK]
    everything = search(runtime.opensearch, runtime.settings, "orders", sort="order_id", limit=1)
    seen = [hit.order_id for hit in everything.hits]
    while everything.cursor:
        everything = search(
            runtime.opensearch, runtime.settings, "orders", sort="order_id", limit=1, cursor=everything.cursor
        )
        seen += [hit.order_id for hit in everything.hits]
    assert sorted(seen) == sorted(["o-short", LONG_ASCII, LONG_CJK])
    report = verify(runtime, settle_s=0.2, projections=("orders",))
    assert report.drift == 0 and report.checked == 3, report.to_json()

    # an extra long-keyed document (its REMOVE lost) is found by verify and repaired under its own id
    dynamodb.delete_item(TableName=table, Key={"order_id": {"S": LONG_ASCII}})
    stream.read()
    stream.applied = len(stream.records)  # the REMOVE is "lost"
    drifted = verify(runtime, settle_s=0.2, projections=("orders",), repair=True)
    assert drifted.projections["orders"].counts()["extra"] == 1, drifted.to_json()
    assert drifted.after_repair is not None and drifted.after_repair.drift == 0, drifted.to_json()
    runtime.opensearch.indices.refresh(index=runtime.settings.index_prefix + "orders")
    left = search(runtime.opensearch, runtime.settings, "orders")
    assert sorted(hit.order_id for hit in left.hits) == sorted(["o-short", LONG_CJK])
