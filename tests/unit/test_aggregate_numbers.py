"""The aggregates' one decimal context and DynamoDB's number rule, and the partition-key mapping."""

from __future__ import annotations

import decimal
import hashlib
from decimal import Decimal

import boto3
import moto
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from projections.orders import customer_totals
from projector.changes import Change, ChangeKind, StreamPosition
from projector.changes.batch import ItemChanges
from projector.config import Settings
from projector.projection.base import Sum
from projector.retry import Deadline
from projector.sinks.aggregates import AggregateSink, ensure_table, numbers, read_aggregate, render_measure
from projector.sinks.aggregates.contributions import diff
from projector.sinks.aggregates.keys import (
    MAX_PARTITION_KEY_BYTES,
    fitted,
    group_of,
    group_pk,
    item_pk,
    projection_of_group_row,
)
from projector.sinks.aggregates.numbers import NumberOutOfRange

pytestmark = pytest.mark.unit

LARGEST = Decimal("9.9999999999999999999999999999999999999E+125")
SMALLEST = Decimal("1E-130")


@pytest.mark.parametrize(
    ("text", "fits"),
    [
        ("0", True),
        ("-0.00", True),
        ("12345678901234567890123456789012345678", True),  # 38 digits
        ("123456789012345678901234567890123456789", False),  # 39
        ("1234567890123456789012345678901234567.8", True),
        ("1" + "0" * 60, True),  # trailing zeros are not significant
        (str(LARGEST), True),
        ("1E+126", False),
        (str(SMALLEST), True),
        ("-1E-130", True),
        ("1E-131", False),
        ("9999999999999999999999999999999999999.99", False),
        ("NaN", False),
        ("Infinity", False),
    ],
)
def test_fits_is_dynamodbs_rule(text: str, fits: bool) -> None:
    assert numbers.fits(Decimal(text)) is fits


def test_arithmetic_on_any_two_storable_values_is_exact_and_never_raises() -> None:
    for a, b in [(LARGEST, SMALLEST), (-LARGEST, -SMALLEST), (LARGEST, LARGEST), (SMALLEST, -LARGEST)]:
        total = numbers.add(a, b)
        assert numbers.subtract(total, b) == a
        assert numbers.subtract(total, a) == b


@given(
    st.decimals(allow_nan=False, allow_infinity=False, places=None).filter(numbers.fits),
    st.decimals(allow_nan=False, allow_infinity=False, places=None).filter(numbers.fits),
)
@settings(max_examples=200)
def test_add_then_subtract_gives_back_the_operand(a: Decimal, b: Decimal) -> None:
    assert numbers.subtract(numbers.add(a, b), b) == a


@pytest.mark.parametrize(
    ("value", "places", "text"),
    [
        ("123456789012345678901234567.75", 2, "123456789012345678901234567.75"),
        ("123456789012345678901234567.8", 2, "123456789012345678901234567.80"),
        ("12345678901234567890123456789012345678", 10, "12345678901234567890123456789012345678.0000000000"),
        ("1E+125", 2, "1" + "0" * 125 + ".00"),
        ("1E-130", 2, "0.00"),
        ("-1E-130", 2, "0.00"),
        ("0.125", 2, "0.12"),  # half-even
        ("0.135", 2, "0.14"),
        ("7", 0, "7"),
    ],
)
def test_render_never_raises_for_a_storable_value(value: str, places: int, text: str) -> None:
    assert numbers.render(Decimal(value), places) == text
    assert render_measure(Sum(attribute="total", places=places), Decimal(value)) == text


def test_render_works_under_a_hostile_thread_context() -> None:
    with decimal.localcontext(decimal.Context(prec=5, traps=[decimal.Inexact, decimal.Rounded])):
        assert (
            numbers.render(Decimal("123456789012345678901234567.75"), 2) == "123456789012345678901234567.75"
        )
        assert numbers.add(Decimal("1E+37"), Decimal("0.01")) == Decimal(
            "10000000000000000000000000000000000000.01"
        )


def test_a_difference_dynamodb_cannot_hold_is_refused_naming_the_measure_not_the_value() -> None:
    with pytest.raises(NumberOutOfRange) as raised:
        diff({"g": {"revenue": Decimal("0.01")}}, {"g": {"revenue": Decimal("1E+37")}})
    assert "'revenue'" in str(raised.value) and "0.01" not in str(raised.value)
    assert diff({"g": {"revenue": Decimal("0.01")}}, {"g": {"revenue": Decimal("1E+36")}}) == {
        "g": {"revenue": Decimal("-999999999999999999999999999999999999.99")}
    }


# ---------------------------------------------------------------- keys


def test_short_keys_stay_natural() -> None:
    assert item_pk("p", "o1") == "p#item#o1"
    assert group_pk("p", "c1") == "p#group#c1"
    at_limit = "x" * (MAX_PARTITION_KEY_BYTES - len("p#group#"))
    assert group_pk("p", at_limit) == "p#group#" + at_limit


@pytest.mark.parametrize("group", ["x" * (MAX_PARTITION_KEY_BYTES - 6), "注" * 700, "a" * 100_000])
def test_long_keys_are_hashed_stably_within_the_limit(group: str) -> None:
    pk = group_pk("p", group)
    assert pk == "p#group~sha256#" + hashlib.sha256(group.encode()).hexdigest()
    assert len(pk.encode()) <= MAX_PARTITION_KEY_BYTES
    assert group_pk("p", group) == pk
    assert item_pk("p", group) == "p#item~sha256#" + hashlib.sha256(group.encode()).hexdigest()
    assert projection_of_group_row(pk) == "p" and group_of(pk, "p") is None


def test_a_hashed_key_never_equals_a_natural_one() -> None:
    long = "y" * 3000
    pk = fitted("p", "group", long)
    digest = pk.rsplit("#", 1)[1]
    for natural in (f"~sha256#{digest}", f"group~sha256#{digest}", pk, pk[len("p#group#") :]):
        assert group_pk("p", natural) != pk
    assert projection_of_group_row("p#group#c1") == "p" and group_of("p#group#c1", "p") == "c1"
    assert projection_of_group_row("p#item#x#group#y") is None


# ---------------------------------------------------------------- end to end, in process


def test_a_29_digit_sum_is_exact_on_a_38_digit_dynamodb() -> None:
    """moto in process, with DynamoDB's 38 digits for its own additions (the server uses Python's 28)."""
    config = Settings(
        dynamodb_endpoint=None,
        opensearch_url="https://search-unit.us-east-1.es.amazonaws.com",
        aggregates_table="aggregates-unit",
        region="us-east-1",
    )
    with moto.mock_aws():
        client = boto3.client("dynamodb", region_name="us-east-1")
        ensure_table(client, config.aggregates_table)
        changes = []
        for n, total in enumerate(["123456789012345678901234567.00", "0.75"], start=1):
            image = {
                "order_id": f"o{n}",
                "customer_id": "big",
                "status": "PAID",
                "total": Decimal(total),
                "created_at": "2024-03-01T10:00:00Z",
                "version": Decimal(1),
            }
            position = StreamPosition(created_at=1_700_000_000 + n, sequence=str(n * 100))
            changes.append(
                ItemChanges(
                    f"o{n}", [Change({"order_id": f"o{n}"}, ChangeKind.INSERT, image, None, position)]
                )
            )
        with decimal.localcontext(decimal.Context(prec=38)):  # moto's ADD runs in this thread's context
            result = AggregateSink(client, config).apply(customer_totals, changes, Deadline.after(30))
        assert not result.failed and not result.poison
        row = read_aggregate(client, config, customer_totals, "big")  # under Python's default 28 digits
    assert row["revenue"] == "123456789012345678901234567.75" and row["order_count"] == 2
