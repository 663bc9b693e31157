"""Every bulk, mget and search request names an index under the prefix, never a root path.

opensearch-py runs against a fake connection that answers like OpenSearch and records each request's
method and path; the batch path (insert, modify, remove of the fixtures) and a search go through it.
The same check against the real OpenSearch and the template's grants: tests/integration/test_request_paths.py.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from opensearchpy import Connection, OpenSearch

from projector.config import Settings
from projector.deadletters import FileDeadLetterStore
from projector.pipeline.stream import StreamApplier
from projector.projection.registry import load_projections
from projector.retry.deadline import Deadline
from projector.sinks.opensearch.writer import OpenSearchSink

pytestmark = pytest.mark.unit

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "records"
DATA_APIS = ("_bulk", "_mget", "_search", "_count")


class RecordingConnection(Connection):
    """Answers alias reads, mget, bulk and search as OpenSearch would for an empty index."""

    calls: list[tuple[str, str]] = []
    prefix = ""

    def perform_request(self, method: str, url: str, params: Any = None, body: Any = None, **_: Any) -> Any:
        path = url.split("?", 1)[0]
        self.calls.append((method, path))
        index = f"{self.prefix}orders-g000001"
        if isinstance(body, bytes):
            body = body.decode()
        if "/_alias/" in path:
            aliases = {f"{self.prefix}orders": {}, f"{self.prefix}orders-write": {}}
            answer: Any = {index: {"aliases": aliases}}
        elif path.endswith("/_mget"):
            answer = {"docs": [{"_index": index, "_id": i, "found": False} for i in json.loads(body)["ids"]]}
        elif path.endswith("/_bulk"):
            lines = [json.loads(line) for line in body.splitlines() if line.strip()]
            actions = [
                line for line in lines if set(line) <= {"index", "create", "update", "delete"} and line
            ]
            items = []
            for action in actions:
                (kind, meta), *_ = action.items()
                items.append(
                    {kind: {"_index": index, "_id": meta["_id"], "status": 201, "result": "created"}}
                )
            answer = {"took": 1, "errors": False, "items": items}
        elif path.endswith(("/_search", "/_count")):
            answer = {"hits": {"total": {"value": 0, "relation": "eq"}, "hits": []}, "count": 0}
        else:
            answer = {"acknowledged": True}
        return 200, {}, json.dumps(answer)


@pytest.mark.parametrize("prefix", ["shop-", "t0a1b2c3d-"])
def test_bulk_mget_and_search_paths_name_a_prefixed_index(prefix: str, tmp_path: Path) -> None:
    from projector.query.search import search

    RecordingConnection.calls = []
    RecordingConnection.prefix = prefix
    settings = Settings(index_prefix=prefix, opensearch_url="http://127.0.0.1:9")
    client = OpenSearch(hosts=[{"host": "127.0.0.1", "port": 9}], connection_class=RecordingConnection)
    sink = OpenSearchSink(client, settings)
    applier = StreamApplier(
        load_projections(settings.projections).all,
        lambda projection: sink,
        FileDeadLetterStore(tmp_path),
    )
    records = [json.loads((FIXTURES / f"{name}.json").read_text()) for name in ("insert", "modify", "remove")]
    outcome = applier.apply(records, Deadline.after(30), only=["orders"])
    assert outcome.first_failed is None, outcome.failures
    search(client, settings, "orders", where=["status=PAID"])

    kinds = {path.rsplit("/", 1)[-1] for _, path in RecordingConnection.calls}
    assert {"_bulk", "_mget", "_search"} <= kinds, RecordingConnection.calls
    for method, path in RecordingConnection.calls:
        if path.rsplit("/", 1)[-1] in DATA_APIS:
            assert path.strip("/").split("/")[0].startswith(prefix), (method, path)
        else:  # alias reads name the prefixed aliases
            assert path.startswith("/_alias/") and all(
                name.startswith(prefix) for name in path.removeprefix("/_alias/").split(",")
            ), (method, path)
