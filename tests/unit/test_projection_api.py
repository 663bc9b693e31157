"""Projection definitions are validated when they are built; the registry finds them and refuses ambiguity."""

from __future__ import annotations

import sys
import textwrap
import uuid
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from projector.config.exceptions import ConfigurationError
from projector.projection import (
    AggregateProjection,
    AttributeVersion,
    Count,
    DocumentProjection,
    Registry,
    StreamPositionVersion,
    Sum,
    load_projections,
)

pytestmark = pytest.mark.unit

MAPPINGS = {
    "properties": {
        "order_id": {"type": "keyword"},
        "note": {"type": "text"},
        "items": {"type": "nested", "properties": {"title": {"type": "text"}, "sku": {"type": "keyword"}}},
    }
}


def document(**overrides: Any) -> DocumentProjection:
    fields: dict[str, Any] = {
        "name": "orders",
        "key_attributes": ("order_id",),
        "mappings": MAPPINGS,
        "document": lambda item: dict(item),
    }
    return DocumentProjection(**{**fields, **overrides})


def aggregate(**overrides: Any) -> AggregateProjection:
    fields: dict[str, Any] = {
        "name": "customer_totals",
        "key_attributes": ("order_id",),
        "measures": {"order_count": Count(), "revenue": Sum(attribute="total")},
        "groups": lambda item: [item["customer_id"]],
    }
    return AggregateProjection(**{**fields, **overrides})


# --- definitions ---------------------------------------------------------------------------------------


def test_a_valid_document_projection_is_strict_and_attribute_versioned_by_default() -> None:
    projection = document(text_fields=("note", "items.title"))
    assert projection.mappings["dynamic"] == "strict"
    assert projection.version == AttributeVersion(attribute="version")
    assert projection.definition()["text_fields"] == ["note", "items.title"]


def test_dynamic_strict_may_be_spelled_out() -> None:
    assert document(mappings={**MAPPINGS, "dynamic": "strict"}).mappings["dynamic"] == "strict"


@pytest.mark.parametrize(
    "name", ["Orders", "1orders", "_orders", "orders-v2", "orders v2", "", "o" * 64, "ordérs"]
)
def test_projection_names_must_be_lowercase_identifiers(name: str) -> None:
    with pytest.raises(ValidationError, match="projection names are lowercase"):
        document(name=name)


@pytest.mark.parametrize("name", ["o", "orders", "orders_v2", "o" * 63])
def test_projection_names_that_are_accepted(name: str) -> None:
    assert document(name=name).name == name


@pytest.mark.parametrize("keys", [(), ("a", "b", "c")])
def test_key_attributes_are_one_or_two(keys: tuple[str, ...]) -> None:
    with pytest.raises(ValidationError, match="key_attributes"):
        document(key_attributes=keys)


@pytest.mark.parametrize(
    ("mappings", "message"),
    [
        ({}, "needs a 'properties' object"),
        ({"properties": ["order_id"]}, "needs a 'properties' object"),
        ({**MAPPINGS, "dynamic": True}, "dynamic: strict"),
        ({**MAPPINGS, "dynamic": "true"}, "dynamic: strict"),
        ({**MAPPINGS, "dynamic": False}, "dynamic: strict"),
        ({**MAPPINGS, "dynamic": "runtime"}, "dynamic: strict"),
    ],
    ids=[
        "no-properties",
        "properties-not-object",
        "dynamic-true",
        "dynamic-true-text",
        "dynamic-false",
        "dynamic-runtime",
    ],
)
def test_mappings_must_be_explicit_and_strict(mappings: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        document(mappings=mappings)


@pytest.mark.parametrize("field", ["order_id", "missing", "items.sku", "items.missing", "note.raw"])
def test_text_fields_must_be_mapped_as_text(field: str) -> None:
    with pytest.raises(ValidationError, match=f"text field '{field}' must be mapped with type 'text'"):
        document(text_fields=(field,))


def test_definitions_are_frozen() -> None:
    projection = document()
    with pytest.raises(ValidationError):
        projection.name = "other"  # type: ignore[misc]


def test_revision_must_be_positive() -> None:
    with pytest.raises(ValidationError, match="revision"):
        document(revision=0)


def test_version_policy_from_plain_data() -> None:
    assert isinstance(document(version={"mode": "stream"}).version, StreamPositionVersion)
    assert document(version={"mode": "attribute", "attribute": "rev"}).version == AttributeVersion(
        attribute="rev"
    )
    with pytest.raises(ValidationError):
        document(version={"mode": "clock"})


def test_definition_hash_is_stable_and_follows_the_definition() -> None:
    base = document()
    assert base.definition_hash() == document().definition_hash()
    assert base.definition_hash() != document(revision=2).definition_hash()
    assert base.definition_hash() != document(version=StreamPositionVersion()).definition_hash()
    assert base.definition_hash() != document(text_fields=("note",)).definition_hash()


def test_item_id_of_single_composite_and_binary_keys() -> None:
    assert document().item_id({"order_id": "o-1"}) == "o-1"
    assert document(key_attributes=("pk", "sk")).item_id({"pk": "c-1", "sk": Decimal(7)}) == '["c-1","7"]'
    assert document(key_attributes=("pk",)).item_id({"pk": b"\x01\xff"}) == "01ff"


def test_aggregate_contributions_per_group() -> None:
    projection = aggregate(groups=lambda item: [item["customer_id"], "all"])
    contributions = projection.contributions({"customer_id": "c-1", "total": Decimal("12.50")})
    assert contributions == {
        "c-1": {"order_count": Decimal(1), "revenue": Decimal("12.50")},
        "all": {"order_count": Decimal(1), "revenue": Decimal("12.50")},
    }


@pytest.mark.parametrize("group", ["", None, 7])
def test_aggregate_groups_must_be_non_empty_strings(group: Any) -> None:
    with pytest.raises(ValueError, match="group keys must be non-empty strings"):
        aggregate(groups=lambda item: [group]).contributions({"customer_id": "c-1", "total": Decimal(1)})


def test_sum_needs_a_number_attribute() -> None:
    with pytest.raises(ValueError, match="'total' must be a number"):
        aggregate().contributions({"customer_id": "c-1", "total": "12.50"})
    with pytest.raises(ValueError, match="'total' must be a number"):
        aggregate().contributions({"customer_id": "c-1"})


@pytest.mark.parametrize("measures", [{}, {"Revenue": Count()}, {"order-count": Count()}])
def test_aggregate_measures_are_named_and_not_empty(measures: dict[str, Any]) -> None:
    with pytest.raises(ValidationError, match="measures"):
        aggregate(measures=measures)


def test_sum_places_are_bounded() -> None:
    with pytest.raises(ValidationError):
        Sum(attribute="total", places=11)


# --- registry ------------------------------------------------------------------------------------------


@pytest.fixture
def package(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """Write a throwaway package of projection modules; answer a function module_name -> source."""
    name = f"projections_{uuid.uuid4().hex[:10]}"
    root = tmp_path / name
    root.mkdir()
    (root / "__init__.py").write_text("")
    monkeypatch.syspath_prepend(str(tmp_path))
    before = set(sys.modules)

    def write(module: str, source: str) -> str:
        (root / f"{module}.py").write_text(textwrap.dedent(source))
        return name

    yield write
    for added in set(sys.modules) - before:
        del sys.modules[added]


ORDERS_MODULE = """
    from projector import DocumentProjection
    {var} = DocumentProjection(
        name={name!r}, key_attributes=("order_id",),
        mappings={{"properties": {{"order_id": {{"type": "keyword"}}}}}},
        document=lambda item: {{"order_id": item["order_id"]}},
    )
"""

TOTALS_MODULE = """
    from projector import AggregateProjection, Count
    totals = AggregateProjection(
        name="totals", key_attributes=("order_id",), measures={"n": Count()},
        groups=lambda item: ["all"],
    )
"""


def test_registry_collects_every_projection_of_a_package(package: Any) -> None:
    name = package("orders", ORDERS_MODULE.format(var="orders", name="orders"))
    package("totals", TOTALS_MODULE)
    package("_private", ORDERS_MODULE.format(var="hidden", name="hidden"))
    registry = load_projections(name)
    assert sorted(registry.by_name) == ["orders", "totals"]
    assert registry.document("orders").name == "orders"
    assert registry.aggregate("totals").name == "totals"
    assert {p.name for p in registry.all} == {"orders", "totals"}


def test_registry_accepts_a_projection_re_exported_by_another_module(package: Any) -> None:
    name = package("orders", ORDERS_MODULE.format(var="orders", name="orders"))
    package("again", "from {pkg}.orders import orders\n".replace("{pkg}", name))
    assert list(load_projections(name).by_name) == ["orders"]


def test_registry_refuses_two_projections_with_one_name(package: Any) -> None:
    name = package("first", ORDERS_MODULE.format(var="orders", name="orders"))
    package("second", ORDERS_MODULE.format(var="copy", name="orders"))
    with pytest.raises(ConfigurationError, match="two projections are named 'orders'") as caught:
        load_projections(name)
    assert "\n" not in str(caught.value)


def test_registry_refuses_two_projections_with_one_name_in_one_module(package: Any) -> None:
    source = ORDERS_MODULE.format(var="orders", name="orders") + ORDERS_MODULE.format(
        var="copy", name="orders"
    )
    name = package("orders", source)
    with pytest.raises(ConfigurationError, match="two projections are named 'orders'"):
        load_projections(name)


def test_a_module_without_projections_is_a_configuration_error(package: Any) -> None:
    name = package("helpers", "VALUE = 1\n")
    with pytest.raises(ConfigurationError, match="no projections found in PROJECTOR_PROJECTIONS") as caught:
        load_projections(f"{name}.helpers")
    assert "\n" not in str(caught.value)


def test_an_empty_module_list_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError, match="no projections found"):
        load_projections(" , ")


def test_a_missing_module_is_a_configuration_error() -> None:
    with pytest.raises(
        ConfigurationError, match="cannot import projections module 'no_such_projections_mod'"
    ):
        load_projections("no_such_projections_mod")


def test_registry_loads_comma_separated_modules(package: Any) -> None:
    name = package("orders", ORDERS_MODULE.format(var="orders", name="orders"))
    package("totals", TOTALS_MODULE)
    registry = load_projections(f" {name}.orders , {name}.totals ")
    assert sorted(registry.by_name) == ["orders", "totals"]


def test_registry_lookups_name_what_is_known() -> None:
    registry = Registry(
        documents=(document(),),
        aggregates=(aggregate(),),
        by_name={"orders": document(), "customer_totals": aggregate()},
    )
    with pytest.raises(
        ConfigurationError, match="no projection named 'nope'; known: customer_totals, orders"
    ):
        registry.get("nope")
    with pytest.raises(ConfigurationError, match="'customer_totals' is not a search projection"):
        registry.document("customer_totals")
    with pytest.raises(ConfigurationError, match="'orders' is not an aggregate projection"):
        registry.aggregate("orders")
    with pytest.raises(ConfigurationError, match="known: none"):
        Registry().get("orders")


def test_the_shipped_projections_load() -> None:
    registry = load_projections("projections")
    assert registry.all
    for projection in registry.all:
        assert projection.definition_hash()


# --- validation when projections load (issue 14, case 7) -----------------------------------------------


@pytest.mark.parametrize("field", ["_projector", "_id", "_source", "_routing"])
def test_reserved_field_names_are_refused_by_the_model(field: str) -> None:
    mappings = {"properties": {**MAPPINGS["properties"], field: {"type": "keyword"}}}
    with pytest.raises(ValidationError, match=rf"\['{field}'\] are reserved"):
        document(mappings=mappings)


@pytest.mark.parametrize("name", ["pk", "sk", "name", "key"])
def test_measure_names_clashing_with_the_aggregate_row_are_refused_by_the_model(name: str) -> None:
    with pytest.raises(ValidationError, match=rf"\['{name}'\] are reserved"):
        aggregate(measures={name: Count()})


def test_definition_hash_covers_what_changes_behaviour_and_nothing_display_only() -> None:
    base, agg = document(), aggregate()
    changed = {
        "keep_expired": document(keep_expired=True),
        "version policy": document(version=StreamPositionVersion()),
        "version attribute": document(version=AttributeVersion(attribute="rev")),
        "key attributes": document(key_attributes=("pk", "sk")),
        "mappings": document(mappings={"properties": {"order_id": {"type": "text"}}}),
    }
    for what, projection in changed.items():
        assert projection.definition_hash() != base.definition_hash(), what
    measures = {
        "sum attribute": aggregate(measures={"order_count": Count(), "revenue": Sum(attribute="net")}),
        "measure kind": aggregate(
            measures={"order_count": Sum(attribute="qty"), "revenue": Sum(attribute="total")}
        ),
        "measure set": aggregate(measures={"order_count": Count()}),
        "keep_expired": aggregate(keep_expired=True),
    }
    for what, projection in measures.items():
        assert projection.definition_hash() != agg.definition_hash(), what
    display_only = [
        aggregate(group_name="customer"),
        aggregate(measures={"order_count": Count(), "revenue": Sum(attribute="total", places=4)}),
    ]
    for projection in display_only:
        assert projection.definition_hash() == agg.definition_hash()
    # keep_expired=False (the default) adds nothing: hashes stored before it was covered stay valid.
    assert "keep_expired" not in base.definition()


def test_item_id_names_the_projection_when_the_record_lacks_its_key() -> None:
    projection = document(name="by_customer", key_attributes=("customer_id",))
    with pytest.raises(ConfigurationError, match=r"'by_customer' has key_attributes \('customer_id',\)"):
        projection.item_id({"order_id": "o-1"})


class FakeDynamoDB:
    """DescribeTable of one table, counting the calls."""

    class exceptions:
        class ResourceNotFoundException(Exception):
            pass

    def __init__(self, tables: dict[str, list[dict[str, str]]], fail: Exception | None = None) -> None:
        self.tables, self.fail, self.calls = tables, fail, 0

    def describe_table(self, TableName: str) -> dict[str, Any]:
        self.calls += 1
        if self.fail is not None:
            raise self.fail
        if TableName not in self.tables:
            raise self.exceptions.ResourceNotFoundException(TableName)
        return {"Table": {"TableName": TableName, "KeySchema": self.tables[TableName]}}


ORDERS_KEY = [{"AttributeName": "order_id", "KeyType": "HASH"}]


def test_check_keys_names_every_wrong_projection_and_both_key_lists() -> None:
    from projector.projection.validation import KeyMismatchError, check_keys

    good = document()
    wrong = aggregate(name="by_customer", key_attributes=("customer_id",))
    check_keys([good], "orders", ("order_id",))
    with pytest.raises(KeyMismatchError) as caught:
        check_keys([good, wrong], "orders", ("order_id",))
    message = str(caught.value)
    assert "'by_customer' has key_attributes ('customer_id',)" in message
    assert "table 'orders' is keyed by ('order_id',)" in message and "'orders' has" not in message
    assert isinstance(caught.value, ConfigurationError)
    with pytest.raises(KeyMismatchError, match=r"keyed by \('pk', 'sk'\)"):
        check_keys([document(key_attributes=("sk", "pk"))], "events", ("pk", "sk"))  # order matters


def test_table_key_is_partition_then_sort_key() -> None:
    from projector.projection.validation import table_key

    schema = [{"AttributeName": "sk", "KeyType": "RANGE"}, {"AttributeName": "pk", "KeyType": "HASH"}]
    assert table_key({"KeySchema": schema}) == ("pk", "sk")


def engine(projections: list[Any], client: FakeDynamoDB) -> Any:
    from types import SimpleNamespace

    return SimpleNamespace(
        settings=SimpleNamespace(source_table="orders"),
        registry=SimpleNamespace(all=tuple(projections)),
        dynamodb=client,
    )


def test_the_handler_checks_keys_once_per_cold_start_and_fails_every_batch_on_a_mismatch() -> None:
    from projector import handler

    client = FakeDynamoDB({"orders": ORDERS_KEY})
    wrong = engine([document(), aggregate(name="by_customer", key_attributes=("customer_id",))], client)
    handler.reset_runtime()
    try:
        for _ in range(3):
            with pytest.raises(ConfigurationError, match="'by_customer' has key_attributes"):
                handler.check_projection_keys(wrong)
        assert client.calls == 1  # cached until the next cold start
        handler.reset_runtime()
        right = engine([document()], client)
        handler.check_projection_keys(right)
        handler.check_projection_keys(right)
        assert client.calls == 2
    finally:
        handler.reset_runtime()


def test_the_handler_does_not_block_when_the_key_cannot_be_read() -> None:
    from projector import handler

    for client in (FakeDynamoDB({}), FakeDynamoDB({}, fail=RuntimeError("AccessDenied"))):
        handler.reset_runtime()
        try:
            handler.check_projection_keys(engine([aggregate(key_attributes=("customer_id",))], client))
            handler.check_projection_keys(engine([aggregate(key_attributes=("customer_id",))], client))
            assert client.calls == 1
        finally:
            handler.reset_runtime()


def test_setup_refuses_a_projection_keyed_by_another_attribute_before_creating_anything() -> None:
    from projector.setup import check_source_key

    client = FakeDynamoDB({"orders": ORDERS_KEY})
    assert check_source_key(engine([document()], client)) == ("order_id",)
    with pytest.raises(ConfigurationError, match=r"table 'orders' is keyed by \('order_id',\)"):
        check_source_key(engine([aggregate(name="by_customer", key_attributes=("customer_id",))], client))
    assert check_source_key(engine([document()], FakeDynamoDB({}))) is None  # no table yet: not checked


# --- per-group values (issue 15, item 6) ---------------------------------------------------------------

LINES_ORDER = {
    "order_id": "o-1",
    "status": "PAID",
    "items": [
        {"sku": "A", "qty": Decimal(2), "price": Decimal("10.25")},
        {"sku": "B", "qty": Decimal(1), "price": Decimal("99.99")},
        {"sku": "A", "qty": Decimal(3), "price": Decimal("0.10")},
    ],
}


def per_line(order: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    return [
        (line["sku"], {"units": line["qty"], "revenue": line["qty"] * line["price"]})
        for line in order["items"]
    ]


def per_group(**overrides: Any) -> AggregateProjection:
    fields: dict[str, Any] = {
        "name": "product_sales",
        "key_attributes": ("order_id",),
        "group_name": "sku",
        "measures": {"units": Sum(integer=True), "revenue": Sum(places=2)},
        "group_values": per_line,
    }
    return AggregateProjection(**{**fields, **overrides})


def test_group_values_give_each_group_its_own_values_and_sum_pairs_of_one_group() -> None:
    assert per_group().contributions(LINES_ORDER) == {
        "A": {"units": Decimal(5), "revenue": Decimal("20.80")},
        "B": {"units": Decimal(1), "revenue": Decimal("99.99")},
    }


def test_group_values_may_be_a_mapping_and_counts_add_one_per_group() -> None:
    projection = per_group(
        measures={"orders": Count(), "units": Sum(integer=True), "revenue": Sum()},
        group_values=lambda order: {"A": {"units": 2}, "B": {"revenue": Decimal("1.5")}},
    )
    assert projection.contributions(LINES_ORDER) == {
        "A": {"orders": Decimal(1), "units": Decimal(2), "revenue": Decimal(0)},
        "B": {"orders": Decimal(1), "units": Decimal(0), "revenue": Decimal("1.5")},
    }
    # a Count is 1 per group even when pairs name the group twice
    twice = per_group(
        measures={"orders": Count(), "units": Sum()}, group_values=lambda o: [("A", {}), ("A", {})]
    )
    assert twice.contributions({}) == {"A": {"orders": Decimal(1), "units": Decimal(0)}}


def test_group_values_sum_exactly_where_the_default_context_would_round() -> None:
    big = Decimal("1234567890123456789012345678.9")  # 29 digits: Python's default context keeps 28
    projection = per_group(
        group_values=lambda o: [("A", {"revenue": big}), ("A", {"revenue": Decimal("0.01")})]
    )
    assert projection.contributions({})["A"]["revenue"] == Decimal("1234567890123456789012345678.91")


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        ([("A", {"price": Decimal(1)})], "unknown measure 'price'"),
        ([("A", {"revenue": 1.5})], "floats are refused"),
        ([("A", {"revenue": "1.50"})], "needs a Decimal or int, got str"),
        ([("A", {"revenue": True})], "needs a Decimal or int, got bool"),
        ([("A", {"revenue": Decimal("NaN")})], "must be a finite number"),
        ([("A", {"units": Decimal("1.5")})], "must be a whole number"),
        ([("", {"units": 1})], "group keys must be non-empty strings, got an empty string"),
        ([(7, {"units": 1})], "group keys must be non-empty strings, got int"),
        (["A"], "group_values must return"),
        ([("A", [1, 2])], "must be a mapping of measure names"),
    ],
)
def test_group_values_are_checked_clearly(answer: Any, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        per_group(group_values=lambda order: answer).contributions({})


def test_a_count_cannot_be_set_by_group_values() -> None:
    projection = per_group(measures={"orders": Count()}, group_values=lambda o: [("A", {"orders": 5})])
    with pytest.raises(ValueError, match="'orders' is a Count"):
        projection.contributions({})


def test_error_messages_never_hold_item_values() -> None:
    secret = "secret-sku-7"
    with pytest.raises(ValueError) as caught:
        per_group(group_values=lambda o: [(secret, {"revenue": 0.5})]).contributions({})
    assert secret not in str(caught.value) and "0.5" not in str(caught.value)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"groups": lambda item: ["A"]}, "exactly one of groups"),
        ({"group_values": None}, "exactly one of groups"),
        ({"measures": {"revenue": Sum(attribute="total")}}, "leave attribute unset"),
    ],
)
def test_a_projection_takes_exactly_one_way_to_its_values(overrides: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        per_group(**overrides)


def test_groups_still_need_sum_attributes() -> None:
    with pytest.raises(ValidationError, match=r"sum measures \['revenue'\] need an attribute"):
        aggregate(measures={"revenue": Sum()})


def test_an_integer_sum_refuses_fractions_from_an_attribute_and_changes_the_hash() -> None:
    units = aggregate(measures={"units": Sum(attribute="total", integer=True)})
    assert units.contributions({"customer_id": "c", "total": Decimal(3)}) == {"c": {"units": Decimal(3)}}
    with pytest.raises(ValueError, match="must be a whole number"):
        units.contributions({"customer_id": "c", "total": Decimal("3.5")})
    plain = aggregate(measures={"units": Sum(attribute="total")})
    assert units.definition_hash() != plain.definition_hash()
    assert "integer" not in plain.definition()["measures"]["units"]  # hashes stored before stay valid


def test_render_prints_counts_and_integer_sums_as_int_and_sums_with_their_places() -> None:
    from projector.sinks.aggregates.reader import render_measure

    assert render_measure(Count(), Decimal(3)) == 3
    assert render_measure(Sum(integer=True), Decimal(12)) == 12
    assert render_measure(Sum(places=2), Decimal("120.5")) == "120.50"


def test_the_example_product_sales_sums_each_skus_own_lines_of_paid_and_shipped_orders() -> None:
    from projections.orders import product_sales

    assert product_sales.contributions(LINES_ORDER) == {
        "A": {"units": Decimal(5), "revenue": Decimal("20.80")},
        "B": {"units": Decimal(1), "revenue": Decimal("99.99")},
    }
    assert product_sales.contributions({**LINES_ORDER, "status": "SHIPPED"})["B"]["units"] == 1
    for status in ("PENDING", "CANCELLED"):
        assert product_sales.contributions({**LINES_ORDER, "status": status}) == {}
    assert product_sales.contributions({"order_id": "o", "status": "PAID", "items": []}) == {}
