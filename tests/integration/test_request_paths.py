"""Every OpenSearch request the function makes names an index under the stack's prefix, and the
template's grants allow exactly what it sends.

The handler runs on the real local OpenSearch twice: once with the indexes gone (it recreates the
template, the index and its aliases) and once on the normal path; then a search. Every request
(method and path) is recorded at the transport and checked against the role's OpenSearch statement
read from infra/template.yaml, with the prefix and the domain ARN filled in.
"""

from __future__ import annotations

import fnmatch
import json
import random
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pytest
from opensearchpy import Transport

from devservers.workload import make_order
from projector.handler import lambda_handler, reset_runtime, runtime
from tests.support.orders_table import put_order, update_order
from tests.support.streams import capture_records, event

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
DOMAIN_ARN = "arn:aws:es:us-east-1:123456789012:domain/shop"
METHODS = {"es:ESHttpGet": "GET", "es:ESHttpHead": "HEAD", "es:ESHttpPost": "POST", "es:ESHttpPut": "PUT"}
DATA_APIS = ("_bulk", "_mget", "_search", "_count")


def template_grants(prefix: str) -> list[tuple[str, str]]:
    """(HTTP method, resource pattern) pairs of the role's OpenSearch statement for an existing domain."""
    from cfnlint.decode import decode_str

    template, problems = decode_str((REPO / "infra" / "template.yaml").read_text(encoding="utf-8"))
    assert not problems
    template = json.loads(json.dumps(template, default=str))
    policies = template["Resources"]["FunctionRole"]["Properties"]["Policies"]
    (document,) = [p["PolicyDocument"] for p in policies if p["PolicyName"] == "write-search-documents"]
    (statement,) = document["Statement"]
    existing = statement["Resource"]["Fn::If"][2]
    patterns = [
        entry["Fn::Sub"].replace("${OpenSearchDomainArn}", DOMAIN_ARN).replace("${IndexPrefix}", prefix)
        for entry in existing
    ]
    return [(METHODS[action], pattern) for action in statement["Action"] for pattern in patterns]


def allowed(method: str, path: str, grants: list[tuple[str, str]]) -> bool:
    resource = f"{DOMAIN_ARN}/{path.lstrip('/')}"
    return any(method == granted and fnmatch.fnmatchcase(resource, pattern) for granted, pattern in grants)


@pytest.fixture
def recorded(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, str]]:
    calls: list[tuple[str, str]] = []
    original = Transport.perform_request

    def record(self: Any, method: str, url: str, *args: Any, **kwargs: Any) -> Any:
        calls.append((method, urlparse(url).path))
        return original(self, method, url, *args, **kwargs)

    monkeypatch.setattr(Transport, "perform_request", record)
    return calls


class Context:
    def get_remaining_time_in_millis(self) -> int:
        return 60_000


def test_the_grants_refuse_what_the_issue_names() -> None:
    grants = template_grants("shop-")
    for method, path in [
        ("PUT", "/_cluster/settings"),
        ("POST", "/_snapshot/repo/snap"),
        ("POST", "/_plugins/_security/api/roles"),
        ("POST", "/_bulk"),
        ("POST", "/_mget"),
        ("POST", "/other-orders/_bulk"),  # another stack's prefix
        ("DELETE", "/shop-orders-g000001"),
        ("GET", "/_alias/other-orders"),
    ]:
        assert not allowed(method, path, grants), (method, path)
    assert allowed("POST", "/shop-orders-g000001/_bulk", grants)


def test_every_request_names_a_prefixed_index_and_is_granted(
    settings_env: Any, dynamodb: Any, dynamodbstreams: Any, opensearch: Any, recorded: list[tuple[str, str]]
) -> None:
    from projector.query.search import search
    from projector.setup import setup

    prefix = settings_env.index_prefix
    reset_runtime()
    try:
        setup(runtime(), with_source_table=True)
        # The indexes are gone (deleted by hand): the function recreates them on its first batch.
        opensearch.indices.delete(index=f"{prefix}*")
        opensearch.indices.delete_index_template(name=f"{prefix}*")
        rng = random.Random(3)
        orders = [make_order(rng, f"O{n:05d}") for n in range(8)]
        for order in orders:
            put_order(dynamodb, settings_env.source_table, order)
        first = capture_records(dynamodb, dynamodbstreams, settings_env.source_table)
        recorded.clear()
        assert lambda_handler(event(first), Context()) == {"batchItemFailures": []}
        update_order(dynamodb, settings_env.source_table, orders[0], status="CANCELLED")
        later = capture_records(
            dynamodb,
            dynamodbstreams,
            settings_env.source_table,
            after=first[-1]["dynamodb"]["SequenceNumber"],
        )
        assert lambda_handler(event(later), Context()) == {"batchItemFailures": []}
        engine = runtime()
        opensearch.indices.refresh(index=f"{prefix}*")
        result = search(engine.opensearch, engine.settings, "orders", where=["status=CANCELLED"])
        assert [document.order_id for document in result.hits] == [orders[0]["order_id"]]
    finally:
        reset_runtime()

    calls = list(recorded)
    grants = template_grants(prefix)
    kinds = {path.rsplit("/", 1)[-1] for _, path in calls}
    assert {"_bulk", "_mget", "_search"} <= kinds, calls  # the test saw every kind it claims to check
    assert any(method == "PUT" and "_index_template" in path for method, path in calls)  # recreated
    for method, path in calls:
        if path.rsplit("/", 1)[-1] in DATA_APIS:
            index = path.strip("/").split("/")[0]
            assert index.startswith(prefix), (method, path)
        assert allowed(method, path, grants), (method, path)
