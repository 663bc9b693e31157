"""`projector.query` and `projector search` against the real OpenSearch on 127.0.0.1:9200.

Each module fixture lays out a projection exactly as `projector setup` does (template, physical index,
filtered read alias) under a unique prefix, and writes documents with the meta object the sink writes,
some of them tombstoned (``visible: false``).
"""

from __future__ import annotations

import json
import random
import subprocess
import sys
import threading
import uuid
from decimal import Decimal
from typing import Any

import pytest
from click.testing import CliRunner

from projections.orders import orders
from projector.changes.batch import ItemChanges
from projector.changes.types import Change, ChangeKind, StreamPosition
from projector.config.settings import Settings
from projector.query import QueryError, SearchUnavailable, facets, pages, search
from projector.query.builder import build_search
from projector.query.types import SearchRequest
from projector.retry.deadline import Deadline
from projector.sinks.opensearch import indexes
from projector.sinks.opensearch.client import build_client
from projector.sinks.opensearch.types import META_FIELD
from projector.sinks.opensearch.writer import OpenSearchSink
from tests.support.polling import wait_until
from tests.support.projections import CARTS

pytestmark = pytest.mark.integration

URL = "http://127.0.0.1:9200"

CATALOG = [
    {
        "order_id": "o-001",
        "customer_id": "c-1",
        "status": "PAID",
        "total": 120.5,
        "currency": "EUR",
        "created_at": "2026-01-05T10:00:00Z",
        "note": "gift wrap please",
        "version": 1,
        "items": [{"sku": "MUG-BLUE", "title": "Blue ceramic mug", "qty": 2, "price": 60.25}],
    },
    {
        "order_id": "o-002",
        "customer_id": "c-1",
        "status": "SHIPPED",
        "total": 15,
        "currency": "EUR",
        "created_at": "2026-01-06T08:30:00Z",
        "note": "the mug arrived broken last time",
        "version": 2,
        "items": [{"sku": "PLATE", "title": "Ceramic plate", "qty": 1, "price": 15}],
    },
    {
        "order_id": "o-003",
        "customer_id": "c-2",
        "status": "PENDING",
        "total": 7.99,
        "created_at": "2026-02-01T00:00:00Z",
        "note": "customer wrote: status:PAID OR *",
        "version": 1,
        "items": [{"sku": "TEA", "title": "Green tea", "qty": 3, "price": 2.67}],
    },
    {
        "order_id": "o-004",
        "customer_id": "c-3",
        "status": "CANCELLED",
        "total": 0.3,
        "currency": "USD",
        "created_at": "2025-12-31T23:59:59Z",
        "note": 'pasted {"match_all":{}} and a "quote" and back\\slash',
        "version": 4,
        "items": [{"sku": "SPOON", "title": "Silver spoon", "qty": 1, "price": 0.3}],
    },
    {
        "order_id": "o-005",
        "customer_id": "c-2",
        "status": "PAID",
        "total": 1000,
        "currency": "EUR",
        "created_at": "2026-01-31T23:59:59.999Z",
        "version": 1,
        "items": [
            {"sku": "MUG-BLUE", "title": "Blue ceramic mug", "qty": 1, "price": 10},
            {"sku": "KETTLE", "title": "Electric kettle", "qty": 1, "price": 990},
        ],
    },
]
TOMBSTONES = [
    {
        "order_id": "o-006",
        "customer_id": "c-1",
        "status": "PAID",
        "total": 500,
        "currency": "EUR",
        "created_at": "2026-01-05T11:00:00Z",
        "note": "gift wrap please",
        "version": 3,
        "items": [{"sku": "MUG-BLUE", "title": "Blue ceramic mug", "qty": 1, "price": 500}],
    },
    {
        "order_id": "o-000",
        "customer_id": "c-9",
        "status": "PAID",
        "total": 9,
        "currency": "USD",
        "created_at": "2026-01-01T00:00:00Z",
        "note": "status:PAID OR * match_all",
        "version": 2,
        "items": [],
    },
]
VISIBLE_IDS = {doc["order_id"] for doc in CATALOG}


@pytest.fixture(scope="module")
def client(opensearch_server: str) -> Any:
    """The projector's own client (tests/conftest.py starts the server when nothing answers)."""
    return build_client(Settings(opensearch_url=opensearch_server, opensearch_timeout_s=30))


def _layout(client: Any, documents: list[dict[str, Any]], hidden: list[dict[str, Any]]) -> Settings:
    prefix = f"test-query-{uuid.uuid4().hex[:8]}-"
    settings = Settings(opensearch_url=URL, index_prefix=prefix, projections="projections")
    indexes.ensure(client, orders, prefix)
    write = indexes.names(orders, prefix).write_alias
    lines: list[dict[str, Any]] = []
    for doc, visible in [*((d, True) for d in documents), *((d, False) for d in hidden)]:
        lines.append({"index": {"_index": write, "_id": doc["order_id"]}})
        lines.append({**doc, META_FIELD: {"visible": visible, "deleted": not visible}})
    for start in range(0, len(lines), 1000):
        response = client.bulk(body=lines[start : start + 1000], refresh="wait_for")
        assert not response["errors"], response
    return settings


def _cleanup(client: Any, settings: Settings) -> None:
    names = indexes.names(orders, settings.index_prefix)
    client.indices.delete(index=names.pattern, ignore=404)
    client.indices.delete_index_template(name=names.template, ignore=404)


@pytest.fixture(scope="module")
def catalog(client: Any) -> Any:
    settings = _layout(client, CATALOG, TOMBSTONES)
    yield settings
    _cleanup(client, settings)


def ids(result: Any) -> list[str]:
    return [hit.order_id for hit in result.hits]


# --- text ---------------------------------------------------------------------------------------------


def test_the_order_whose_item_title_matches_ranks_first(client: Any, catalog: Settings) -> None:
    result = search(client, catalog, "orders", text="ceramic mug")
    assert ids(result)[0] == "o-001"
    assert set(ids(result)) == {"o-001", "o-005", "o-002"}  # o-002: "ceramic" in a title, "mug" in its note
    assert ids(result)[-1] == "o-002"
    assert result.total == 3  # the tombstoned o-006 matches too, but is neither returned nor counted


def test_every_word_must_occur(client: Any, catalog: Settings) -> None:
    assert ids(search(client, catalog, orders, text="kettle")) == ["o-005"]
    assert ids(search(client, catalog, orders, text="green kettle")) == []
    assert ids(search(client, catalog, orders, text="  GIFT   wrap ")) == ["o-001"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("status:PAID OR *", {"o-003"}),  # the note that literally says so, not every PAID order
        ("*", set()),
        ('"', set()),
        ("\\", set()),
        ('{"match_all":{}}', {"o-004"}),
        ('"quote"', {"o-004"}),
        ("back\\slash", {"o-004"}),
        ("OR", {"o-003"}),
        ("status:PAID", {"o-003"}),
    ],
)
def test_injection_attempts_are_literal_text(
    client: Any, catalog: Settings, text: str, expected: set
) -> None:
    result = search(client, catalog, orders, text=text)
    assert set(ids(result)) == expected
    assert result.total == len(expected)


@pytest.mark.parametrize(
    "condition", ["status=PAID OR *", "customer_id=*", 'status={"match_all":{}}', "order_id=o-00?"]
)
def test_where_values_are_literal_too(client: Any, catalog: Settings, condition: str) -> None:
    assert search(client, catalog, orders, where=[condition]).total == 0


# --- filters ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("where", "expected"),
    [
        (["status=PAID"], {"o-001", "o-005"}),
        (["customer_id=c-1"], {"o-001", "o-002"}),
        (["currency=USD"], {"o-004"}),
        (["total=120.50"], {"o-001"}),
        (["total=15"], {"o-002"}),
        (["total=0.3"], {"o-004"}),
        (["total>=15"], {"o-001", "o-002", "o-005"}),
        (["total>15"], {"o-001", "o-005"}),
        (["total<=15"], {"o-002", "o-003", "o-004"}),
        (["total<15"], {"o-003", "o-004"}),
        (["version=1"], {"o-001", "o-003", "o-005"}),
        (["items.sku=MUG-BLUE"], {"o-001", "o-005"}),
        (["items.qty>=3"], {"o-003"}),
        (["created_at>=2026-01-01"], {"o-001", "o-002", "o-003", "o-005"}),
        (["created_at=2026-01"], {"o-001", "o-002", "o-005"}),
        (["created_at=2026-01-31"], {"o-005"}),
        (["created_at<2026-01-06"], {"o-001", "o-004"}),
        (["created_at<=2026-01-06"], {"o-001", "o-002", "o-004"}),
        (["created_at>2026-01-31"], {"o-003"}),
        (["created_at>2026-01-05T10:00:00Z"], {"o-002", "o-003", "o-005"}),
        (["created_at>=2026-01-05T10:00:00Z", "created_at<=2026-01-06T08:30:00Z"], {"o-001", "o-002"}),
        (["created_at=2026-01-05T11:00:00+01:00"], {"o-001"}),
        (["status=PAID", "total>=200"], {"o-005"}),
        (["order_id=o-006"], set()),
    ],
)
def test_filters(client: Any, catalog: Settings, where: list[str], expected: set) -> None:
    result = search(client, catalog, orders, where=where)
    assert set(ids(result)) == expected
    assert result.total == len(expected)


def test_text_and_filters_combine(client: Any, catalog: Settings) -> None:
    assert ids(search(client, catalog, orders, text="ceramic mug", where=["customer_id=c-2"])) == ["o-005"]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"where": ["colour=red"]}, "unknown field 'colour' for --where; fields: created_at, currency"),
        ({"where": ["total=abc"]}, "total is a number field (double): 'abc' is not a number"),
        ({"where": ["created_at>=tomorrow"]}, "created_at is a date field"),
        ({"where": ["version>1.5"]}, "version is an integer field"),
        ({"where": ["note=gift"]}, "note is a full-text field"),
        ({"sort": "note"}, "cannot sort on full-text field note"),
        ({"limit": 1001}, "limit must be an integer from 1 to 1000"),
        ({"cursor": "garbage"}, "not a search cursor"),
    ],
)
def test_bad_queries_are_clear_errors(client: Any, catalog: Settings, kwargs: dict, message: str) -> None:
    with pytest.raises(QueryError) as raised:
        search(client, catalog, orders, **kwargs)
    assert message in str(raised.value)


def test_unknown_projections_list_the_search_projections(client: Any, catalog: Settings) -> None:
    with pytest.raises(QueryError, match="'nope' is not a projection; search projections: orders"):
        search(client, catalog, "nope")
    with pytest.raises(QueryError, match="'daily_sales' is not a search projection; search projections"):
        search(client, catalog, "daily_sales")


def test_a_missing_alias_says_to_run_setup(client: Any) -> None:
    settings = Settings(opensearch_url=URL, index_prefix=f"test-query-absent-{uuid.uuid4().hex[:6]}-")
    with pytest.raises(SearchUnavailable, match="does not exist: run `projector setup` first"):
        search(client, settings, orders)


# --- tombstones ---------------------------------------------------------------------------------------


def test_tombstones_are_never_returned_nor_counted(client: Any, catalog: Settings) -> None:
    everything = search(client, catalog, orders, limit=1000)
    assert set(ids(everything)) == VISIBLE_IDS
    assert everything.total == len(VISIBLE_IDS)
    assert search(client, catalog, orders, text="gift wrap").total == 1
    assert dict(facets(client, catalog, orders, "customer_id"))["c-1"] == 2


def test_the_visible_filter_guards_a_physical_index_too(client: Any, catalog: Settings) -> None:
    physical = indexes.read_index(client, orders, catalog.index_prefix)
    body = build_search(orders, SearchRequest.of(text="gift wrap"), META_FIELD).body
    response = client.search(index=physical, body=body)
    assert [hit["_id"] for hit in response["hits"]["hits"]] == ["o-001"]
    assert response["hits"]["total"]["value"] == 1


def test_an_order_removed_through_the_sink_is_gone(client: Any) -> None:
    settings = _layout(client, [], [])
    sink = OpenSearchSink(client, settings)
    order = {
        "order_id": "s-1",
        "customer_id": "c-1",
        "status": "PAID",
        "total": Decimal("120.50"),
        "currency": "EUR",
        "created_at": "2026-01-05T10:00:00Z",
        "version": Decimal(1),
        "items": [{"sku": "A", "title": "Blue mug", "qty": Decimal(2), "price": Decimal("60.25")}],
    }
    alias = indexes.names(orders, settings.index_prefix).read_alias
    try:
        insert = Change(
            keys={"order_id": "s-1"},
            kind=ChangeKind.INSERT,
            new_image=order,
            old_image=None,
            position=StreamPosition(1.0, "100"),
        )
        assert sink.apply(orders, [ItemChanges("s-1", [insert])], Deadline.after(30)).applied == 1
        client.indices.refresh(index=alias)
        found = search(client, settings, orders, text="blue mug")
        assert found.total == 1
        assert (found.hits[0].total, found.hits[0].items[0].price) == (Decimal("120.50"), Decimal("60.25"))
        remove = Change(
            keys={"order_id": "s-1"},
            kind=ChangeKind.REMOVE,
            new_image=None,
            old_image=order,
            position=StreamPosition(2.0, "200"),
        )
        assert sink.apply(orders, [ItemChanges("s-1", [remove])], Deadline.after(30)).applied == 1
        client.indices.refresh(index=alias)
        for gone in (
            search(client, settings, orders, text="blue mug"),
            search(client, settings, orders),
            search(client, settings, orders, where=["order_id=s-1"]),
        ):
            assert (gone.total, gone.hits) == (0, [])
        assert facets(client, settings, orders, "status") == []
    finally:
        _cleanup(client, settings)


# --- documents, sort, cursors -------------------------------------------------------------------------


def test_hits_are_typed_exact_documents(client: Any, catalog: Settings) -> None:
    result = search(client, catalog, orders, where=["customer_id=c-3"])
    doc = result.hits[0]
    assert doc.total == Decimal("0.3")
    assert doc.items[0].price == Decimal("0.3")
    assert doc.items[0].qty == 1
    dumped = doc.model_dump(by_alias=True, exclude_unset=True)
    assert META_FIELD not in dumped
    assert dumped["order_id"] == "o-004"


@pytest.mark.parametrize(
    ("sort", "expected"),
    [
        ("total:desc", ["o-005", "o-001", "o-002", "o-003", "o-004"]),
        ("total", ["o-004", "o-003", "o-002", "o-001", "o-005"]),
        ("created_at:asc", ["o-004", "o-001", "o-002", "o-005", "o-003"]),
        ("customer_id:desc", ["o-004", "o-003", "o-005", "o-001", "o-002"]),
        ("currency", ["o-001", "o-002", "o-005", "o-004", "o-003"]),  # o-003 has no currency: last
        ("currency:desc", ["o-004", "o-001", "o-002", "o-005", "o-003"]),
        (None, ["o-001", "o-002", "o-003", "o-004", "o-005"]),
    ],
)
@pytest.mark.parametrize("limit", [1, 2, 5])
def test_cursors_walk_every_order_without_duplicates(
    client: Any, catalog: Settings, sort: str | None, expected: list[str], limit: int
) -> None:
    walked: list[str] = []
    for page in pages(client, catalog, orders, sort=sort, limit=limit):
        assert page.total == 5
        assert len(page.hits) <= limit
        walked += ids(page)
    assert walked == expected


def test_relevance_pages_join_up(client: Any, catalog: Settings) -> None:
    whole = ids(search(client, catalog, orders, text="ceramic mug"))
    walked = [
        order_id
        for page in pages(client, catalog, orders, text="ceramic mug", limit=1)
        for order_id in ids(page)
    ]
    assert walked == whole


def test_last_page_has_no_cursor(client: Any, catalog: Settings) -> None:
    assert search(client, catalog, orders, limit=5).cursor is None
    assert search(client, catalog, orders, limit=4).cursor is not None


def test_a_cursor_from_another_query_is_refused(client: Any, catalog: Settings) -> None:
    first = search(client, catalog, orders, where=["status=PAID"], limit=1)
    assert first.cursor
    with pytest.raises(QueryError, match="belongs to a different query"):
        search(client, catalog, orders, where=["status=SHIPPED"], limit=1, cursor=first.cursor)
    with pytest.raises(QueryError, match="belongs to a different query"):
        search(client, catalog, orders, where=["status=PAID"], sort="total", limit=1, cursor=first.cursor)
    second = search(client, catalog, orders, where=["status=PAID"], limit=1, cursor=first.cursor)
    assert ids(first) + ids(second) == ["o-001", "o-005"]


# --- facets -------------------------------------------------------------------------------------------


def test_facet_counts(client: Any, catalog: Settings) -> None:
    assert facets(client, catalog, orders, "status") == [
        ("PAID", 2),
        ("CANCELLED", 1),
        ("PENDING", 1),
        ("SHIPPED", 1),
    ]
    assert facets(client, catalog, orders, "items.sku", size=2) == [("MUG-BLUE", 2), ("KETTLE", 1)]
    assert facets(client, catalog, orders, "status", text="ceramic mug") == [("PAID", 2), ("SHIPPED", 1)]
    assert facets(client, catalog, orders, "currency", where=["total>=15"]) == [("EUR", 3)]
    with pytest.raises(QueryError, match="cannot facet on total"):
        facets(client, catalog, orders, "total")


# --- nested objects -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def carts(client: Any) -> Any:
    prefix = f"test-query-{uuid.uuid4().hex[:8]}-"
    settings = Settings(opensearch_url=URL, index_prefix=prefix)
    indexes.ensure(client, CARTS, prefix)
    write = indexes.names(CARTS, prefix).write_alias
    docs = [
        (
            {
                "cart_id": "a",
                "comment": "gift",
                "lines": [
                    {"sku": "A", "qty": 1, "title": "blue mug"},
                    {"sku": "A", "qty": 5, "title": "red plate"},
                ],
            },
            True,
        ),
        (
            {
                "cart_id": "b",
                "lines": [
                    {"sku": "B", "qty": 1, "title": "blue plate"},
                    {"sku": "A", "qty": 1, "title": "green mug"},
                ],
            },
            True,
        ),
        (
            {
                "cart_id": "c",
                "comment": "blue mug please",
                "lines": [{"sku": "C", "qty": 2, "title": "kettle"}],
            },
            True,
        ),
        ({"cart_id": "d", "lines": [{"sku": "A", "qty": 9, "title": "blue mug"}]}, False),
    ]
    for doc, visible in docs:
        client.index(index=write, id=doc["cart_id"], body={**doc, META_FIELD: {"visible": visible}})
    client.indices.refresh(index=write)
    yield settings
    names = indexes.names(CARTS, prefix)
    client.indices.delete(index=names.pattern, ignore=404)
    client.indices.delete_index_template(name=names.template, ignore=404)


def test_nested_fields_filter_search_and_facet_per_document(client: Any, carts: Settings) -> None:
    def cart_ids(**kwargs: Any) -> list[str]:
        return [hit.cart_id for hit in search(client, carts, CARTS, **kwargs).hits]

    assert cart_ids(where=["lines.qty>=2"]) == ["a", "c"]
    assert cart_ids(where=["lines.sku=A"]) == ["a", "b"]
    assert cart_ids(text="blue mug") == ["a", "c"]  # b's "blue" and "mug" are on different lines
    assert facets(client, carts, CARTS, "lines.sku") == [("A", 2), ("B", 1), ("C", 1)]
    line = search(client, carts, CARTS, where=["cart_id=a"]).hits[0].lines[1]
    assert (line.sku, line.qty, line.title) == ("A", 5, "red plate")


# --- the command line ---------------------------------------------------------------------------------


def _env(settings: Settings) -> dict[str, str]:
    return {
        "PROJECTOR_OPENSEARCH_URL": URL,
        "PROJECTOR_INDEX_PREFIX": settings.index_prefix,
        "PROJECTOR_PROJECTIONS": "projections",
    }


def _cli(settings: Settings, *args: str) -> Any:
    from projector.cli.main import cli

    return CliRunner().invoke(cli, ["search", *args], env=_env(settings), catch_exceptions=False)


def test_cli_json_shape_and_exact_numbers(catalog: Settings) -> None:
    result = _cli(catalog, "orders", "ceramic", "mug", "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert list(data) == ["total", "hits", "cursor"]
    assert data["total"] == 3 and data["cursor"] is None
    assert data["hits"][0]["order_id"] == "o-001"
    assert all(META_FIELD not in hit for hit in data["hits"])
    assert '"total": 120.5,' in result.output and '"price": 60.25' in result.output
    cheap = json.loads(_cli(catalog, "orders", "--where", "customer_id=c-3", "--json").output)
    assert cheap["hits"][0]["total"] == 0.3 and cheap["hits"][0]["items"][0]["price"] == 0.3


def test_cli_pages_with_the_printed_cursor(catalog: Settings) -> None:
    walked: list[str] = []
    cursor: list[str] = []
    while True:
        args = ["orders", "--sort", "total:desc", "--limit", "2", *cursor, "--json"]
        data = json.loads(_cli(catalog, *args).output)
        walked += [hit["order_id"] for hit in data["hits"]]
        if data["cursor"] is None:
            break
        cursor = ["--cursor", data["cursor"]]
    assert walked == ["o-005", "o-001", "o-002", "o-003", "o-004"]


def test_cli_table_and_facets(catalog: Settings) -> None:
    table = _cli(catalog, "orders", "--where", "status=PAID", "--limit", "1")
    assert table.exit_code == 0
    assert "orders: 2 matches" in table.output and "o-001" in table.output and "--cursor" in table.output
    counted = json.loads(_cli(catalog, "orders", "--facet", "status", "--json").output)
    assert counted == {
        "facets": {
            "status": [
                {"value": "PAID", "count": 2},
                {"value": "CANCELLED", "count": 1},
                {"value": "PENDING", "count": 1},
                {"value": "SHIPPED", "count": 1},
            ]
        }
    }
    assert "PAID" in _cli(catalog, "orders", "--facet", "status").output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["nope"], "error: 'nope' is not a projection; search projections: orders"),
        (
            ["orders", "--where", "total=abc"],
            "error: total is a number field (double): 'abc' is not a number",
        ),
        (
            ["orders", "--where", "colour=red"],
            "error: unknown field 'colour' for --where; fields: created_at,",
        ),
        (["orders", "--limit", "0"], "error: limit must be an integer from 1 to 1000, got 0"),
        (["orders", "--limit", "many"], "error: --limit must be an integer from 1 to 1000, got 'many'"),
        (["orders", "--cursor", "abc"], "error: not a search cursor"),
        (["orders", "--facet", "note"], "error: cannot facet on note (text)"),
    ],
)
def test_cli_errors_are_one_line_on_stderr(catalog: Settings, args: list[str], message: str) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "projector.cli.main", "search", *args, "--json"],
        capture_output=True,
        text=True,
        env={**_os_env(), **_env(catalog)},
        timeout=60,
    )
    assert done.returncode == 2
    assert done.stdout == ""
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(message), done.stderr


def _os_env() -> dict[str, str]:
    import os

    return dict(os.environ)


# --- paging a thousand documents while they change ----------------------------------------------------

TITLES = ["Blue ceramic mug", "Mug, ceramic, blue", "Ceramic bowl"]  # phrase / all words / words apart
TIER = {"Blue ceramic mug": 0, "Mug, ceramic, blue": 1, "Ceramic bowl": 2}


@pytest.fixture(scope="module")
def thousand(client: Any) -> Any:
    rng = random.Random(7)
    docs = [
        {
            "order_id": f"p-{n:04d}",
            "customer_id": f"c-{n % 37}",
            "status": rng.choice(["PAID", "SHIPPED"]),
            "total": rng.choice([5, 9.99, 12.5, 100]),
            "currency": "EUR",
            "created_at": f"2026-01-{1 + n % 28:02d}T{n % 24:02d}:00:00Z",
            "note": f"order number {n}" + (" with a mug" if n % 3 == 2 else ""),
            "version": 1,
            "items": [{"sku": f"S-{n % 11}", "title": TITLES[n % 3], "qty": 1, "price": 5}],
        }
        for n in range(1200)
    ]
    hidden = [doc for doc in docs if int(doc["order_id"][2:]) % 6 == 5]  # 200 tombstones, interleaved
    shown = [doc for doc in docs if doc not in hidden]
    settings = _layout(client, shown, hidden)
    yield settings, shown
    _cleanup(client, settings)


class Updater(threading.Thread):
    """Rewrites other fields (version, customer) of random visible documents, refreshing often.

    Every rewrite is a new Lucene document and the old copy still counts in term statistics, so any
    score that depends on them (BM25) would move between pages.
    """

    def __init__(self, client: Any, settings: Settings, docs: list[dict[str, Any]]) -> None:
        super().__init__(daemon=True)
        self.client, self.docs, self.stop, self.writes = client, docs, threading.Event(), 0
        self.write_alias = indexes.names(orders, settings.index_prefix).write_alias
        self.error: BaseException | None = None

    def run(self) -> None:
        rng = random.Random(11)
        try:
            while not self.stop.is_set():
                doc = dict(rng.choice(self.docs))
                self.writes += 1
                doc.update(version=1 + self.writes, customer_id=f"c-{self.writes}")
                self.client.index(
                    index=self.write_alias,
                    id=doc["order_id"],
                    body={**doc, META_FIELD: {"visible": True, "deleted": False}},
                    refresh="true" if self.writes % 2 == 0 else "false",
                )
        except BaseException as error:  # surfaced by the test
            self.error = error

    def wait_for(self, writes: int, timeout_s: float = 30) -> None:
        """Block until ``writes`` rewrites were made (so each page sees a changed, refreshed index)."""
        wait_until(
            lambda: self.writes >= writes or self.error is not None, timeout_s, 0.002, f"{writes} rewrites"
        )


@pytest.mark.slow
@pytest.mark.parametrize(
    ("text", "sort"),
    [
        (None, None),
        (None, "total:desc"),
        (None, "created_at"),
        (None, "status:desc"),
        ("ceramic mug", None),
        ("ceramic mug", "total:desc"),
    ],
)
def test_paging_1000_documents_while_they_change_has_no_duplicates_or_gaps(
    client: Any, thousand: Any, text: str | None, sort: str | None
) -> None:
    settings, shown = thousand
    assert len(shown) == 1000
    updater = Updater(client, settings, shown)
    updater.start()
    try:
        walked: list[str] = []
        before = updater.writes
        for number, page in enumerate(pages(client, settings, orders, text=text, sort=sort, limit=37), 1):
            assert page.total == 1000
            walked += ids(page)
            updater.wait_for(before + 2 * number)  # at least one refresh with new writes before the next page
        during = updater.writes - before
    finally:
        updater.stop.set()
        updater.join(timeout=30)
    assert updater.error is None, updater.error
    assert during >= 2 * 27, f"only {during} concurrent writes: the test did not exercise concurrency"
    assert len(walked) == len(set(walked)) == 1000
    assert set(walked) == {doc["order_id"] for doc in shown}
    by_id = {doc["order_id"]: doc for doc in shown}
    if sort is not None:
        field, _, direction = sort.partition(":")
        values = [by_id[order_id][field] for order_id in walked]
        assert values == sorted(values, reverse=direction == "desc")
    elif text is not None:  # relevance: exact phrase in a title, then all words in it, then across fields
        assert walked == sorted(
            walked, key=lambda order_id: (TIER[by_id[order_id]["items"][0]["title"]], order_id)
        )
