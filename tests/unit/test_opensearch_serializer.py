"""The OpenSearch serializer writes every number exactly, or refuses it."""

from __future__ import annotations

import base64
import json
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from projector.sinks.opensearch.serializer import (
    LONG_MAX,
    InexactNumberError,
    SerializationError,
    dumps,
    exact_number,
    merge_objects,
    to_json,
)

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (Decimal("0"), 0),
        (Decimal("-0"), 0),
        (Decimal("42"), 42),
        (Decimal("1E+2"), 100),
        (Decimal("120.50"), 120.5),
        (Decimal("0.1"), 0.1),
        (Decimal("-19.99"), -19.99),
        (Decimal(str(LONG_MAX)), LONG_MAX),
        (Decimal("1E+20"), 1e20),
    ],
)
def test_exact_numbers(value: Decimal, expected: int | float) -> None:
    result = exact_number(value)
    assert result == expected
    assert type(result) is type(expected)
    assert Decimal(json.dumps(result)) == value


@pytest.mark.parametrize(
    "value",
    [
        Decimal("0.12345678901234567890"),
        Decimal("9223372036854775809"),
        Decimal("12345678901234567.5"),
        Decimal("NaN"),
        Decimal("Infinity"),
        Decimal("1E+400"),
    ],
)
def test_inexact_numbers_are_refused_with_a_hint(value: Decimal) -> None:
    with pytest.raises(InexactNumberError) as caught:
        exact_number(value)
    assert "cannot be represented exactly in a JSON double" in str(caught.value)
    assert "map it as keyword" in str(caught.value)
    assert isinstance(caught.value, SerializationError)


@given(st.decimals(min_value=Decimal("-1e12"), max_value=Decimal("1e12"), places=2, allow_nan=False))
def test_money_amounts_round_trip_exactly(amount: Decimal) -> None:
    assert Decimal(dumps({"total": amount}).decode()[len('{"total":') : -1]) == amount


@given(st.decimals(allow_nan=True, allow_infinity=True))
def test_any_decimal_is_exact_or_refused(value: Decimal) -> None:
    try:
        text = dumps(value).decode()
    except InexactNumberError:
        return
    assert Decimal(text) == value


def test_containers_sets_and_bytes() -> None:
    item = {
        "tags": {"b", "a", "c"},
        "scores": {Decimal("2"), Decimal("1.5")},
        "blobs": {b"\x01", b"\x00"},
        "raw": b"\xffdata",
        "items": [{"qty": Decimal("2"), "price": Decimal("9.99")}],
        "pair": ("x", Decimal("1")),
        "flag": True,
        "none": None,
    }
    assert to_json(item) == {
        "tags": ["a", "b", "c"],
        "scores": [1.5, 2],
        "blobs": [base64.b64encode(b"\x00").decode(), base64.b64encode(b"\x01").decode()],
        "raw": base64.b64encode(b"\xffdata").decode(),
        "items": [{"qty": 2, "price": 9.99}],
        "pair": ["x", 1],
        "flag": True,
        "none": None,
    }


def test_nested_inexact_number_is_refused() -> None:
    with pytest.raises(InexactNumberError, match=r"0\.1000000000000000000001"):
        dumps({"items": [{"price": Decimal("0.1000000000000000000001")}]})


def test_unknown_types_and_keys_are_refused() -> None:
    with pytest.raises(SerializationError):
        dumps({"when": object()})
    with pytest.raises(SerializationError):
        dumps({1: "one"})
    with pytest.raises(SerializationError):
        dumps({"x": float("nan")})


def test_output_is_compact_utf8() -> None:
    assert dumps({"note": "café", "n": Decimal("1.50")}) == '{"note":"café","n":1.5}'.encode()


def test_merge_objects() -> None:
    assert json.loads(merge_objects(b'{"a":1}', b'{"b":2}')) == {"a": 1, "b": 2}
    assert merge_objects(b'{"a":1}', b"{}") == b'{"a":1}'
    assert merge_objects(b"{}", b'{"b":2}') == b'{"b":2}'
