"""Index lifecycle against the real local OpenSearch: template, generations, atomic alias moves."""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING, Any

import pytest
from opensearchpy import OpenSearch
from opensearchpy.exceptions import RequestError

from projections.orders import order_document, orders
from projector.changes.batch import ItemChanges
from projector.changes.types import Change, ChangeKind, StreamPosition
from projector.config.settings import Settings
from projector.retry.deadline import Deadline
from projector.sinks.opensearch import indexes
from projector.sinks.opensearch.client import build_client
from projector.sinks.opensearch.errors import IndexLayoutError
from projector.sinks.opensearch.types import META_FIELD, READ_FILTER
from projector.sinks.opensearch.writer import OpenSearchSink

if TYPE_CHECKING:
    from tests.conftest import IsolatedEnv

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def client(opensearch_server: str) -> OpenSearch:
    return build_client(Settings(opensearch_url=opensearch_server))


@pytest.fixture
def prefix(settings_env: IsolatedEnv) -> str:
    """A unique index prefix; conftest removes every index and template under it afterwards."""
    return settings_env.index_prefix


class Recorder:
    """Counts the calls made through a client (to prove an alias move is one request)."""

    def __init__(self, target: Any, calls: list[str] | None = None) -> None:
        self.target = target
        self.calls: list[str] = [] if calls is None else calls

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self.target, name)
        if name == "indices":
            return Recorder(attribute, self.calls)
        if not callable(attribute):
            return attribute

        def call(*args: Any, **kwargs: Any) -> Any:
            self.calls.append(name)
            return attribute(*args, **kwargs)

        return call


def aliases(client: OpenSearch, prefix: str) -> dict[str, dict[str, Any]]:
    found = client.indices.get_alias(index=f"{prefix}orders-g*")
    return {name: body["aliases"] for name, body in sorted(found.items())}


def mapping_of(client: OpenSearch, index: str) -> dict[str, Any]:
    return client.indices.get_mapping(index=index)[index]["mappings"]


def with_extra_field() -> Any:
    properties = {**orders.mappings["properties"], "channel": {"type": "keyword"}}
    return orders.model_copy(update={"mappings": {**orders.mappings, "properties": properties}})


def write_one(client: OpenSearch, prefix: str, order_id: str, version: int, second: float) -> None:
    image = {
        "order_id": order_id,
        "customer_id": "c-1",
        "status": "PAID",
        "total": Decimal("5.00"),
        "currency": "EUR",
        "created_at": "2026-11-27T08:00:00Z",
        "version": Decimal(version),
    }
    kind = ChangeKind.INSERT if version == 1 else ChangeKind.MODIFY
    change = Change(
        keys={"order_id": order_id},
        kind=kind,
        new_image=image,
        old_image=None,
        position=StreamPosition(second, str(int(second * 1000))),
    )
    result = OpenSearchSink(client, Settings(index_prefix=prefix)).apply(
        orders, [ItemChanges(item_id=order_id, changes=[change])], Deadline.after(30)
    )
    assert (result.applied, result.failed) == (1, {})


def test_ensure_is_idempotent_and_creates_everything_once(client: OpenSearch, prefix: str) -> None:
    for _ in range(3):
        assert indexes.ensure(client, orders, prefix) == f"{prefix}orders-g000001"
    assert aliases(client, prefix) == {
        f"{prefix}orders-g000001": {f"{prefix}orders": {"filter": READ_FILTER}, f"{prefix}orders-write": {}}
    }
    [found] = client.indices.get_index_template(name=f"{prefix}orders")["index_templates"]
    template = found["index_template"]
    assert template["index_patterns"] == [f"{prefix}orders-g*"]
    mappings = template["template"]["mappings"]
    assert mappings["dynamic"] == "strict"
    assert set(mappings["properties"]) == set(orders.mappings["properties"]) | {META_FIELD}
    assert mappings["_meta"]["projector"]["definition_hash"] == orders.definition_hash()
    physical = mapping_of(client, f"{prefix}orders-g000001")
    assert physical["properties"][META_FIELD]["properties"]["visible"] == {"type": "boolean"}
    assert physical["_meta"]["projector"] == {
        "projection": "orders",
        "generation": 1,
        "definition_hash": orders.definition_hash(),
    }
    assert indexes.write_targets(client, orders, prefix) == [f"{prefix}orders-g000001"]
    assert indexes.read_index(client, orders, prefix) == f"{prefix}orders-g000001"


def test_ensure_restores_a_missing_alias(client: OpenSearch, prefix: str) -> None:
    indexes.ensure(client, orders, prefix)
    client.indices.delete_alias(index=f"{prefix}orders-g000001", name=f"{prefix}orders-write")
    assert indexes.write_targets(client, orders, prefix) == []
    indexes.ensure(client, orders, prefix)
    assert indexes.write_targets(client, orders, prefix) == [f"{prefix}orders-g000001"]


def test_the_template_shapes_every_generation(client: OpenSearch, prefix: str) -> None:
    indexes.ensure(client, orders, prefix)
    client.indices.create(index=f"{prefix}orders-g000042")
    mappings = mapping_of(client, f"{prefix}orders-g000042")
    assert mappings["dynamic"] == "strict" and META_FIELD in mappings["properties"]
    with pytest.raises(RequestError, match="strict_dynamic_mapping_exception"):
        client.index(index=f"{prefix}orders-g000042", body={"surprise": 1})


def test_rebuild_moves_the_aliases_atomically_and_rolls_back(client: OpenSearch, prefix: str) -> None:
    old, new = f"{prefix}orders-g000001", f"{prefix}orders-g000002"
    indexes.ensure(client, orders, prefix)
    write_one(client, prefix, "o-before", 1, 1_790_000_000.0)
    changed = with_extra_field()

    recorder = Recorder(client)
    assert indexes.begin_rebuild(recorder, changed, prefix) == new  # type: ignore[arg-type]
    assert [call for call in recorder.calls if call in ("create", "update_aliases")] == ["create"]
    assert indexes.begin_rebuild(client, changed, prefix) == new
    both = {f"{prefix}orders": {"filter": READ_FILTER}, f"{prefix}orders-write": {}}
    assert aliases(client, prefix) == {old: both, new: {f"{prefix}orders-write": {}}}
    assert indexes.write_targets(client, changed, prefix) == [old, new]
    write_one(client, prefix, "o-during", 1, 1_790_000_001.0)
    for index in (old, new):
        assert client.get(index=index, id="o-during")["found"]
    described = indexes.describe(client, changed, prefix)
    assert (described.read_index, described.rebuilding, described.needs_rebuild) == (old, True, True)

    recorder = Recorder(client)
    assert indexes.finish_rebuild(recorder, changed, prefix) == new  # type: ignore[arg-type]
    assert [call for call in recorder.calls if call != "get_alias"] == ["update_aliases"]
    assert aliases(client, prefix) == {old: {f"{prefix}orders-write": {}}, new: both}
    assert indexes.finish_rebuild(client, changed, prefix) == new
    write_one(client, prefix, "o-after", 1, 1_790_000_002.0)
    assert client.get(index=old, id="o-after")["found"], "the previous generation stays exact for rollback"
    described = indexes.describe(client, changed, prefix)
    assert (described.read_index, described.generation, described.needs_rebuild) == (new, 2, False)
    assert indexes.describe(client, orders, prefix).needs_rebuild

    recorder = Recorder(client)
    assert indexes.rollback(recorder, changed, prefix) == old  # type: ignore[arg-type]
    assert [call for call in recorder.calls if call != "get_alias"] == ["update_aliases"]
    assert aliases(client, prefix) == {old: both, new: {}}
    assert indexes.describe(client, orders, prefix).needs_rebuild is False
    with pytest.raises(IndexLayoutError):
        indexes.rollback(client, orders, prefix)


def test_rollback_during_a_rebuild_stops_writing_to_the_new_generation(
    client: OpenSearch, prefix: str
) -> None:
    old = indexes.ensure(client, orders, prefix)
    new = indexes.begin_rebuild(client, orders, prefix)
    assert indexes.rollback(client, orders, prefix) == old
    assert indexes.write_targets(client, orders, prefix) == [old]
    assert indexes.read_index(client, orders, prefix) == old
    assert client.indices.exists(index=new)
    assert indexes.begin_rebuild(client, orders, prefix) == f"{prefix}orders-g000003"


def test_a_rebuild_with_another_definition_in_progress_is_refused(client: OpenSearch, prefix: str) -> None:
    indexes.ensure(client, orders, prefix)
    indexes.begin_rebuild(client, orders, prefix)
    with pytest.raises(IndexLayoutError, match="in progress"):
        indexes.begin_rebuild(client, with_extra_field(), prefix)


def test_describe(client: OpenSearch, prefix: str) -> None:
    missing = indexes.describe(client, orders, prefix)
    assert (missing.exists, missing.read_index, missing.needs_rebuild) == (False, None, False)
    indexes.ensure(client, orders, prefix)
    described = indexes.describe(client, orders, prefix)
    assert described.to_dict() == {
        "read_alias": f"{prefix}orders",
        "write_alias": f"{prefix}orders-write",
        "exists": True,
        "read_index": f"{prefix}orders-g000001",
        "generation": 1,
        "write_indexes": [f"{prefix}orders-g000001"],
        "stored_hash": orders.definition_hash(),
        "code_hash": orders.definition_hash(),
        "rebuilding": False,
        "needs_rebuild": False,
    }
    changed = with_extra_field()
    assert changed.definition_hash() != orders.definition_hash()
    assert indexes.describe(client, changed, prefix).needs_rebuild
    assert order_document({"order_id": "x"}) == {"order_id": "x"}
