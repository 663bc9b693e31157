"""The query builder is pure: request in, DSL out. These tests pin the safety rules and the shapes."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from projections.orders import orders
from projector.projection.base import DocumentProjection
from projector.query import cursor as cursors
from projector.query.builder import Schema, build_facet, build_search
from projector.query.types import Condition, QueryError, SearchRequest, SortSpec, document_model
from tests.support.projections import CARTS

pytestmark = pytest.mark.unit

META = "projector_meta"
VISIBLE = {"term": {f"{META}.visible": True}}


def plan(**kwargs: Any):
    return build_search(orders, SearchRequest.of(**kwargs), META)


def filters(**kwargs: Any) -> list[dict[str, Any]]:
    return plan(**kwargs).body["query"]["bool"]["filter"]


def walk(node: Any) -> list[str]:
    """Every key in a DSL tree."""
    if isinstance(node, dict):
        return [key for key, value in node.items() for key in [key, *walk(value)]]
    if isinstance(node, list):
        return [key for value in node for key in walk(value)]
    return []


# --- free text --------------------------------------------------------------------------------------

INJECTIONS = [
    "status:PAID OR *",
    "*",
    '"',
    "\\",
    '{"match_all":{}}',
    "a AND (b OR c)~2^3",
    "title:/.*/",
    '+-&&||!(){}[]^"~*?:\\/',
]


def text_values(node: Any) -> list[Any]:
    """The values of every text query in a DSL tree."""
    found: list[Any] = []
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "multi_match":
                found.append(value["query"])
            elif key in ("match", "match_phrase"):
                found += [spec["query"] for spec in value.values()]
            else:
                found += text_values(value)
    elif isinstance(node, list):
        for value in node:
            found += text_values(value)
    return found


@pytest.mark.parametrize("text", INJECTIONS)
def test_text_is_only_ever_a_literal_value(text: str) -> None:
    body = plan(text=text).body
    keys = set(walk(body))
    assert not keys & {
        "query_string",
        "simple_query_string",
        "match_all",
        "wildcard",
        "regexp",
        "script",
        "prefix",
        "fuzzy",
    }
    values = text_values(body)
    assert len(values) == 5  # the required match, and two bonuses per text field
    assert all(value == text.strip() for value in values)


def test_text_searches_the_text_fields_with_every_word_required() -> None:
    text = plan(text="blue mug").body["query"]["bool"]["must"][0]["bool"]
    assert text["must"] == [
        {
            "constant_score": {
                "boost": 1.0,
                "filter": {
                    "multi_match": {
                        "query": "blue mug",
                        "fields": ["items.title", "note"],
                        "type": "cross_fields",
                        "operator": "and",
                    }
                },
            }
        }
    ]
    every_word = {"match": {"items.title": {"query": "blue mug", "operator": "and"}}}
    phrase = {"match_phrase": {"items.title": {"query": "blue mug"}}}
    assert text["should"][:2] == [
        {"constant_score": {"boost": 2.0, "filter": every_word}},
        {"constant_score": {"boost": 4.0, "filter": phrase}},
    ]


def test_text_scores_are_constant_scores_only() -> None:
    """Scores that depend on index statistics move page boundaries while documents are written."""
    text = plan(text="blue mug").body["query"]["bool"]["must"][0]["bool"]
    for clause in text["must"] + text["should"]:
        assert set(clause) == {"constant_score"}


def test_blank_text_is_no_text() -> None:
    body = plan(text="   ").body
    assert "must" not in body["query"]["bool"]
    assert body["sort"] == [{"order_id": {"order": "asc"}}]


def test_every_query_hides_invisible_documents() -> None:
    assert filters()[0] == VISIBLE
    assert filters(text="x", where=["status=PAID"])[0] == VISIBLE
    facet = build_facet(orders, "status", SearchRequest.of(), META, 10)
    assert facet["query"]["bool"]["filter"][0] == VISIBLE


def test_meta_field_is_excluded_from_sources() -> None:
    assert plan().body["_source"] == {"excludes": [META]}


# --- conditions -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("condition", "clause"),
    [
        ("status=PAID", {"term": {"status": "PAID"}}),
        ("status = PAID OR *", {"term": {"status": "PAID OR *"}}),
        ("items.sku=SKU-1", {"term": {"items.sku": "SKU-1"}}),
        ("total=120.50", {"term": {"total": 120.5}}),
        ("total>=10", {"range": {"total": {"gte": 10.0}}}),
        ("total>10", {"range": {"total": {"gt": 10.0}}}),
        ("total<=10", {"range": {"total": {"lte": 10.0}}}),
        ("total<1e2", {"range": {"total": {"lt": 100.0}}}),
        ("version=3", {"term": {"version": 3}}),
        ("items.qty>=2", {"range": {"items.qty": {"gte": 2}}}),
    ],
)
def test_conditions_become_typed_clauses(condition: str, clause: dict[str, Any]) -> None:
    assert filters(where=[condition])[1:] == [clause]


def day(bounds: dict[str, str]) -> dict[str, Any]:
    return {"range": {"created_at": {**bounds, "format": "strict_date_optional_time"}}}


@pytest.mark.parametrize(
    ("condition", "clause"),
    [
        (
            "created_at=2026-01-05",
            day({"gte": "2026-01-05T00:00:00.000000Z", "lt": "2026-01-06T00:00:00.000000Z"}),
        ),
        ("created_at>=2026-01-05", day({"gte": "2026-01-05T00:00:00.000000Z"})),
        ("created_at>2026-01-05", day({"gte": "2026-01-06T00:00:00.000000Z"})),
        ("created_at<2026-01-05", day({"lt": "2026-01-05T00:00:00.000000Z"})),
        ("created_at<=2026-01-05", day({"lt": "2026-01-06T00:00:00.000000Z"})),
        ("created_at<=2026-02", day({"lt": "2026-03-01T00:00:00.000000Z"})),
        ("created_at=2024", day({"gte": "2024-01-01T00:00:00.000000Z", "lt": "2025-01-01T00:00:00.000000Z"})),
        ("created_at>2026-01-05T10:00:00Z", day({"gt": "2026-01-05T10:00:00.000000Z"})),
        ("created_at<=2026-01-05T12:00:00+02:00", day({"lte": "2026-01-05T10:00:00.000000Z"})),
        (
            "created_at=2026-01-05T10:00:00",
            day({"gte": "2026-01-05T10:00:00.000000Z", "lte": "2026-01-05T10:00:00.000000Z"}),
        ),
    ],
)
def test_dates_compare_as_periods_or_instants(condition: str, clause: dict[str, Any]) -> None:
    assert filters(where=[condition])[1:] == [clause]


def test_several_conditions_are_all_required() -> None:
    assert len(filters(where=["status=PAID", "total>=10", "total<20"])) == 4


@pytest.mark.parametrize(
    ("condition", "message"),
    [
        ("total=abc", "total is a number field (double): 'abc' is not a number"),
        ("total>=NaN", "not a finite number"),
        ("total>=1e999", "not a finite number"),
        ("version=1.5", "version is an integer field (long): '1.5' is not an integer"),
        ("created_at>=yesterday", "created_at is a date field: 'yesterday' is not an ISO-8601 date"),
        ("created_at>=now-1d", "is not an ISO-8601 date"),
        ("created_at=2026-13-01", "is not an ISO-8601 date"),
        (
            "colour=red",
            "unknown field 'colour' for --where; fields: created_at, currency, customer_id, items.",
        ),
        ("note=hello", "note is a full-text field with no keyword subfield: search its words as TEXT"),
        ("items.title=mug", "items.title is a full-text field"),
        ("status>=PAID", "ranges (>=, >, <=, <) work on number and date fields; status is keyword"),
        ("status", "cannot read condition 'status'"),
        ("status=", "has no value"),
        ("=PAID", "cannot read condition"),
    ],
)
def test_bad_conditions_are_clear_errors(condition: str, message: str) -> None:
    with pytest.raises(QueryError, match=None) as raised:
        plan(where=[condition])
    assert message in str(raised.value)


def test_text_field_with_keyword_subfield_filters_on_the_subfield() -> None:
    projection = DocumentProjection(
        name="things",
        key_attributes=("id",),
        text_fields=("title",),
        document=lambda item: item,
        mappings={
            "properties": {
                "id": {"type": "keyword"},
                "title": {"type": "text", "fields": {"raw": {"type": "keyword"}}},
            }
        },
    )
    body = build_search(projection, SearchRequest.of(where=["title=Blue Mug"], sort="title:desc"), META).body
    assert body["query"]["bool"]["filter"][1] == {"term": {"title.raw": "Blue Mug"}}
    assert body["sort"][0] == {"title.raw": {"order": "desc", "missing": "_last"}}


# --- nested -----------------------------------------------------------------------------------------


def test_nested_fields_are_queried_inside_nested_queries() -> None:
    body = build_search(CARTS, SearchRequest.of(text="mug", where=["lines.qty>=2"]), META).body
    assert body["query"]["bool"]["filter"][1] == {
        "nested": {"path": "lines", "query": {"range": {"lines.qty": {"gte": 2}}}, "score_mode": "max"}
    }
    groups = body["query"]["bool"]["must"][0]["bool"]["must"][0]["bool"]
    assert groups["minimum_should_match"] == 1
    assert groups["should"][0]["nested"]["path"] == "lines"
    assert groups["should"][0]["nested"]["query"]["constant_score"]["filter"]["multi_match"]["fields"] == [
        "lines.title"
    ]
    assert groups["should"][1]["constant_score"]["filter"]["multi_match"]["fields"] == ["comment"]
    with pytest.raises(QueryError, match="inside nested objects"):
        build_search(CARTS, SearchRequest.of(sort="lines.qty"), META)


def test_nested_facets_count_documents() -> None:
    aggs = build_facet(CARTS, "lines.sku", SearchRequest.of(), META, 5)["aggs"]["facet"]
    assert aggs["nested"] == {"path": "lines"}
    assert aggs["aggs"]["values"]["aggs"] == {"documents": {"reverse_nested": {}}}


# --- sort and paging --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "sort", "keys"),
    [
        ({}, [{"order_id": {"order": "asc"}}], ("order_id",)),
        (
            {"text": "mug"},
            [{"_score": {"order": "desc"}}, {"order_id": {"order": "asc"}}],
            ("_score", "order_id"),
        ),
        (
            {"text": "mug", "sort": "created_at:desc"},
            [{"created_at": {"order": "desc", "missing": "_last"}}, {"order_id": {"order": "asc"}}],
            ("created_at", "order_id"),
        ),
        (
            {"sort": "total"},
            [{"total": {"order": "asc", "missing": "_last"}}, {"order_id": {"order": "asc"}}],
            ("total", "order_id"),
        ),
        ({"sort": "order_id:desc"}, [{"order_id": {"order": "desc", "missing": "_last"}}], ("order_id",)),
    ],
)
def test_sort_always_ends_with_the_unique_key(kwargs: dict[str, Any], sort: list[Any], keys: tuple) -> None:
    built = plan(**kwargs)
    assert built.body["sort"] == sort
    assert built.sort_keys == keys


@pytest.mark.parametrize(
    ("sort", "message"),
    [
        ("note", "cannot sort on full-text field note"),
        ("colour:desc", "unknown field 'colour' for --sort"),
        ("total:down", "sort direction must be asc or desc"),
        ("_score", "sorting by relevance (_score) needs search TEXT"),
        ("total desc", "cannot read sort"),
    ],
)
def test_bad_sorts_are_clear_errors(sort: str, message: str) -> None:
    with pytest.raises(QueryError) as raised:
        plan(sort=sort)
    assert message in str(raised.value)


@pytest.mark.parametrize("limit", [0, -1, 1001, "10", True, 2.5])
def test_limit_is_validated(limit: Any) -> None:
    with pytest.raises(QueryError, match="limit must be an integer from 1 to 1000"):
        SearchRequest.of(limit=limit)


def test_page_size_asks_one_more_to_know_whether_another_page_exists() -> None:
    assert plan(limit=1000).body["size"] == 1001


def test_cursor_round_trips_and_belongs_to_its_query() -> None:
    built = plan(where=["status=PAID"], sort="total:desc")
    fingerprint = cursors.fingerprint(built.identity)
    token = cursors.encode([120.5, "o-1"], fingerprint)
    assert token.replace("-", "").replace("_", "").isalnum()
    assert cursors.decode(token, fingerprint, built.sort_keys) == [120.5, "o-1"]
    same = plan(where=["status = PAID"], sort="total:desc", limit=5)
    assert cursors.fingerprint(same.identity) == fingerprint
    for other in (
        plan(where=["status=SHIPPED"], sort="total:desc"),
        plan(where=["status=PAID"]),
        plan(text="mug", where=["status=PAID"], sort="total:desc"),
    ):
        with pytest.raises(QueryError, match="belongs to a different query"):
            cursors.decode(token, cursors.fingerprint(other.identity), other.sort_keys)


def test_conditions_in_another_order_are_the_same_query() -> None:
    one = plan(where=["status=PAID", "total>=10"])
    two = plan(where=["total>=10", "status=PAID"])
    assert cursors.fingerprint(one.identity) == cursors.fingerprint(two.identity)


@pytest.mark.parametrize("token", ["", "!!!", "bm90IGpzb24", "eyJ2IjoyfQ", "e30"])
def test_garbage_cursors_are_clear_errors(token: str) -> None:
    with pytest.raises(QueryError, match="cursor"):
        cursors.decode(token, "x", ("order_id",))


def test_damaged_cursor_values_are_refused() -> None:
    token = cursors.encode([{"match_all": {}}], "f")
    with pytest.raises(QueryError, match="damaged"):
        cursors.decode(token, "f", ("order_id",))
    with pytest.raises(QueryError, match="damaged"):
        cursors.decode(cursors.encode(["a", "b"], "f"), "f", ("order_id",))


@given(
    st.lists(
        st.one_of(
            st.none(),
            st.text(),
            st.integers(-(2**63), 2**63 - 1),
            st.floats(allow_nan=False, allow_infinity=False),
        ),
        min_size=1,
        max_size=3,
    )
)
def test_cursor_values_survive_exactly(after: list[Any]) -> None:
    keys = tuple(f"k{i}" for i in range(len(after)))
    assert cursors.decode(cursors.encode(after, "fp"), "fp", keys) == after


# --- facets -----------------------------------------------------------------------------------------


def test_facet_is_a_terms_aggregation_over_matching_documents() -> None:
    body = build_facet(orders, "status", SearchRequest.of(text="mug", where=["total>=10"]), META, 5)
    assert body["size"] == 0
    assert body["aggs"] == {
        "facet": {"terms": {"field": "status", "size": 5, "order": [{"_count": "desc"}, {"_key": "asc"}]}}
    }
    assert len(body["query"]["bool"]["filter"]) == 2


@pytest.mark.parametrize(
    ("field", "message"),
    [
        ("total", "cannot facet on total (double): facets count keyword fields: currency, customer_id"),
        ("note", "cannot facet on note (text)"),
        ("colour", "unknown field 'colour' for --facet"),
    ],
)
def test_facets_need_keyword_fields(field: str, message: str) -> None:
    with pytest.raises(QueryError) as raised:
        build_facet(orders, field, SearchRequest.of(), META, 10)
    assert message in str(raised.value)


@pytest.mark.parametrize("size", [0, 1001])
def test_facet_size_is_validated(size: int) -> None:
    with pytest.raises(QueryError, match="facet size"):
        build_facet(orders, "status", SearchRequest.of(), META, size)


# --- parsing and documents --------------------------------------------------------------------------


def test_condition_and_sort_parsing() -> None:
    assert Condition.parse(" total >= 10 ") == Condition(field="total", op=">=", value="10")
    assert Condition.parse("note.raw=a=b") == Condition(field="note.raw", op="=", value="a=b")
    assert SortSpec.parse("total:DESC") == SortSpec(field="total", direction="desc")
    assert SortSpec.parse("_score") == SortSpec(field="_score", direction="desc")


def test_schema_lists_filterable_fields() -> None:
    assert Schema.of(orders).filterable() == [
        "created_at",
        "currency",
        "customer_id",
        "items.price",
        "items.qty",
        "items.sku",
        "order_id",
        "status",
        "total",
        "version",
    ]


def test_document_model_is_typed_from_the_mapping() -> None:
    model = document_model(orders)
    assert document_model(orders) is model
    doc = model.model_validate(
        {
            "order_id": "o-1",
            "total": 120.5,
            "version": 3,
            "created_at": "2026-01-05T10:00:00Z",
            "items": [{"sku": "S", "title": "Blue mug", "qty": 2, "price": 0.1}],
            "projector_meta": {"visible": True},
        }
    )
    assert doc.total == Decimal("120.5")
    assert doc.items[0].price == Decimal("0.1")
    dumped = doc.model_dump(by_alias=True, exclude_unset=True)
    assert "projector_meta" not in dumped
    assert json.loads(json.dumps(dumped, default=str))["order_id"] == "o-1"
    single = model.model_validate({"order_id": ["a", "b"], "items": {"sku": "S"}})
    assert single.order_id == ["a", "b"]
