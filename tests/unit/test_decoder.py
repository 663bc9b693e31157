"""The DynamoDB JSON decoder: exact round trips against boto3, one clear error per malformed value."""

from __future__ import annotations

import base64
import json
from decimal import Decimal
from typing import Any

import pytest
from boto3.dynamodb.types import Binary, TypeDeserializer, TypeSerializer
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from projector.records import DecodeError, MalformedRecordError, decode_image, decode_value, parse_record

pytestmark = pytest.mark.unit

SERIALIZER = TypeSerializer()
DESERIALIZER = TypeDeserializer()
ETINY = -128 - 38 + 1  # smallest exponent DynamoDB's 38-digit context holds exactly


# --- strategies: every value TypeSerializer accepts -------------------------------------------------------


@st.composite
def wide_numbers(draw: st.DrawFn) -> Decimal:
    """Any Decimal DynamoDB can store: up to 38 significant digits, magnitude 1E-130 .. 9.99...E+125."""
    coefficient = draw(st.integers(min_value=1, max_value=10**38 - 1))
    digits = len(str(coefficient))
    adjusted = draw(st.integers(min_value=max(-130, ETINY + digits - 1), max_value=125))
    sign = draw(st.sampled_from((0, 1)))
    return Decimal((sign, tuple(int(d) for d in str(coefficient)), adjusted - digits + 1))


numbers = st.one_of(
    st.integers(min_value=-(10**38) + 1, max_value=10**38 - 1).map(Decimal),
    st.decimals(min_value=-10_000, max_value=10_000, places=2, allow_nan=False, allow_infinity=False),
    wide_numbers(),
    st.just(Decimal("0")),
)
names = st.text(min_size=1, max_size=12)
scalars = st.one_of(
    st.text(max_size=30),
    numbers,
    st.binary(max_size=30),
    st.booleans(),
    st.none(),
    st.sets(st.text(max_size=10), min_size=1, max_size=5),
    st.sets(numbers, min_size=1, max_size=5),
    st.sets(st.binary(max_size=10), min_size=1, max_size=5),
)
values = st.recursive(
    scalars,
    lambda children: st.lists(children, max_size=5) | st.dictionaries(names, children, max_size=5),
    max_leaves=25,
)
images = st.dictionaries(names, values, min_size=1, max_size=8)


def lambda_json(av: Any) -> Any:
    """What Lambda would deliver for boto3's serialised form: binaries as base64 text, through JSON."""

    def convert(node: Any) -> Any:
        if isinstance(node, bytes | Binary):
            return base64.b64encode(bytes(node)).decode("ascii")
        if isinstance(node, dict):
            return {key: convert(value) for key, value in node.items()}
        if isinstance(node, list):
            return [convert(value) for value in node]
        return node

    return json.loads(json.dumps(convert(av)))


def plain(value: Any) -> Any:
    """boto3's deserialised value with its Binary wrappers unwrapped, for exact comparisons."""
    if isinstance(value, Binary):
        return bytes(value)
    if isinstance(value, dict):
        return {key: plain(item) for key, item in value.items()}
    if isinstance(value, list):
        return [plain(item) for item in value]
    if isinstance(value, set):
        return {plain(item) for item in value}
    return value


def assert_identical(actual: Any, expected: Any) -> None:
    """Equal and of the same types all the way down (True == Decimal(1) would fool a plain ==)."""
    assert type(actual) is type(expected), (actual, expected)
    if isinstance(expected, dict):
        assert actual.keys() == expected.keys()
        for key in expected:
            assert_identical(actual[key], expected[key])
    elif isinstance(expected, list):
        assert len(actual) == len(expected)
        for got, want in zip(actual, expected, strict=True):
            assert_identical(got, want)
    elif isinstance(expected, set):
        assert actual == expected
        assert {type(item) for item in actual} == {type(item) for item in expected}
    else:
        assert actual == expected
        if isinstance(expected, Decimal):
            assert actual.as_tuple() == expected.as_tuple() or actual.is_zero()


# --- properties -------------------------------------------------------------------------------------------


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(values)
def test_any_serialisable_value_round_trips(value: Any) -> None:
    serialised = SERIALIZER.serialize(value)
    assert_identical(decode_value(serialised), value)  # boto3's low-level client form (bytes)
    assert_identical(decode_value(lambda_json(serialised)), value)  # Lambda's JSON form (base64)
    assert_identical(decode_value(serialised), plain(DESERIALIZER.deserialize(serialised)))


@settings(max_examples=150, suppress_health_check=[HealthCheck.too_slow])
@given(images)
def test_any_image_round_trips(image: dict[str, Any]) -> None:
    serialised = {name: SERIALIZER.serialize(value) for name, value in image.items()}
    assert_identical(decode_image(lambda_json(serialised)), image)
    expected = {name: plain(DESERIALIZER.deserialize(av)) for name, av in serialised.items()}
    assert_identical(decode_image(serialised), expected)


@given(numbers)
def test_numbers_are_decimals_with_every_digit(number: Decimal) -> None:
    text = str(number)
    decoded = decode_value({"N": text})
    assert type(decoded) is Decimal
    assert decoded == number
    assert str(decoded) == text


# --- examples ---------------------------------------------------------------------------------------------


def test_every_type_tag() -> None:
    image = {
        "s": {"S": "héllo"},
        "n": {"N": "-12.50"},
        "big": {"N": "12345678901234567890123456789012345678"},
        "tiny": {"N": "1E-130"},
        "huge": {"N": "9.9999999999999999999999999999999999999E+125"},
        "b": {"B": "AAEC/w=="},
        "raw": {"B": b"\x00\x01"},
        "ss": {"SS": ["a", "b"]},
        "ns": {"NS": ["1", "2.5"]},
        "bs": {"BS": ["AA==", "AQ=="]},
        "l": {"L": [{"S": "x"}, {"N": "1"}, {"NULL": True}, {"BOOL": False}, {"L": []}, {"M": {}}]},
        "m": {"M": {"inner": {"M": {"deep": {"BOOL": True}}}}},
        "null": {"NULL": True},
        "empty": {"S": ""},
    }
    assert decode_image(image) == {
        "s": "héllo",
        "n": Decimal("-12.50"),
        "big": Decimal("12345678901234567890123456789012345678"),
        "tiny": Decimal("1E-130"),
        "huge": Decimal("9.9999999999999999999999999999999999999E+125"),
        "b": b"\x00\x01\x02\xff",
        "raw": b"\x00\x01",
        "ss": {"a", "b"},
        "ns": {Decimal(1), Decimal("2.5")},
        "bs": {b"\x00", b"\x01"},
        "l": ["x", Decimal(1), None, False, [], {}],
        "m": {"inner": {"deep": True}},
        "null": None,
        "empty": "",
    }
    assert type(decode_image(image)["big"]) is Decimal


def test_decoding_does_not_touch_its_input() -> None:
    image = {"items": {"L": [{"M": {"price": {"N": "1.5"}}}]}}
    snapshot = json.loads(json.dumps(image))
    decode_image(image)
    assert image == snapshot


# --- malformed values -------------------------------------------------------------------------------------

MALFORMED = [
    ({"total": {"N": "abc"}}, "total", "N value is not a number (str of 3 characters)"),
    ({"total": {"N": "NaN"}}, "total", "N value is not a number (str of 3 characters)"),
    ({"total": {"N": "Infinity"}}, "total", "N value is not a number (str of 8 characters)"),
    ({"total": {"N": "1_000"}}, "total", "N value is not a number (str of 5 characters)"),
    ({"total": {"N": " 12"}}, "total", "N value is not a number (str of 3 characters)"),
    ({"total": {"N": ""}}, "total", "N value is not a number (str of 0 characters)"),
    ({"total": {"N": 12}}, "total", "N value must be a string, got int"),
    ({"total": {"N": "1" * 39}}, "total", "more than 38 significant digits"),
    ({"total": {"N": "1." + "0" * 37 + "1"}}, "total", "more than 38 significant digits"),
    ({"total": {"N": "1E+127"}}, "total", "outside DynamoDB's number range"),
    ({"total": {"N": "1E-200"}}, "total", "outside DynamoDB's number range"),
    ({"blob": {"B": "not base64!"}}, "blob", "B value is not valid base64 (str of 11 characters)"),
    ({"blob": {"B": "AAE"}}, "blob", "is not valid base64"),
    ({"blob": {"B": 7}}, "blob", "B value must be a base64 string or bytes, got int"),
    ({"x": {"DATE": "2024-05-01"}}, "x", "unknown type tag 'DATE'"),
    ({"x": {"S": "a", "N": "1"}}, "x", "exactly one type tag, got 'S', 'N'"),
    ({"x": {}}, "x", "exactly one type tag, got none"),
    ({"x": "plain"}, "x", "attribute value must be an object"),
    ({"x": {"S": 5}}, "x", "S value must be a string, got int"),
    ({"x": {"BOOL": "true"}}, "x", "BOOL value must be true or false"),
    ({"x": {"NULL": False}}, "x", "NULL value must be true, got bool"),
    ({"x": {"M": []}}, "x", "M value must be an object"),
    ({"x": {"L": {}}}, "x", "L value must be a list"),
    ({"x": {"SS": ["a", 1]}}, "x[1]", "SS member must be a string, got int"),
    ({"x": {"NS": ["1", "two"]}}, "x[1]", "N value is not a number (str of 3 characters)"),
    ({"x": {"BS": ["AA==", "%%"]}}, "x[1]", "is not valid base64"),
    ({"x": {"SS": "a"}}, "x", "SS value must be a list"),
    (
        {"items": {"L": [{"M": {}}, {"M": {}}, {"M": {"price": {"N": "12,50"}}}]}},
        "items[2].price",
        "N value is not a number (str of 5 characters)",
    ),
    ({"items": {"L": [{"S": "a"}, {"N": "x"}]}}, "items[1]", "N value is not a number (str of 1 character)"),
    ({"items": {"L": [{"S": "a"}, {"Q": "x"}]}}, "items[1]", "unknown type tag 'Q'"),
    (
        {"m": {"M": {"ok": {"S": "a"}, "bad key": {"N": "-"}}}},
        "m['bad key']",
        "N value is not a number (str of 1 character)",
    ),
]


@pytest.mark.parametrize(("image", "field", "reason"), MALFORMED)
def test_malformed_values_name_the_path(image: dict[str, Any], field: str, reason: str) -> None:
    with pytest.raises(DecodeError) as caught:
        decode_image(image)
    error = caught.value
    assert isinstance(error, MalformedRecordError)
    assert isinstance(error, ValueError)
    assert error.field == field
    assert reason in error.reason
    assert str(error) == f"{field}: {error.reason}"
    assert "\n" not in str(error)


def test_decode_value_top_level_errors_have_no_path() -> None:
    with pytest.raises(DecodeError, match=r"^unknown type tag 'X'$") as caught:
        decode_value({"X": 1})
    assert caught.value.field is None
    with pytest.raises(DecodeError, match="image must be an object"):
        decode_image([{"S": "a"}])


# --- malformed records: one typed error naming the record and the field -----------------------------------


def record(**dynamodb: Any) -> dict[str, Any]:
    data = {
        "ApproximateCreationDateTime": 1714564800,
        "Keys": {"order_id": {"S": "ord-1"}},
        "NewImage": {"order_id": {"S": "ord-1"}, "total": {"N": "10"}},
        "SequenceNumber": "000123",
        "SizeBytes": 60,
        "StreamViewType": "NEW_AND_OLD_IMAGES",
    }
    data.update(dynamodb)
    return {
        "eventID": "1a2b",
        "eventName": "INSERT",
        "eventVersion": "1.1",
        "eventSource": "aws:dynamodb",
        "awsRegion": "eu-west-1",
        "dynamodb": {key: value for key, value in data.items() if value is not None},
    }


def test_non_numeric_n_in_a_record_names_record_and_attribute() -> None:
    parsed = parse_record(record(NewImage={"order_id": {"S": "ord-1"}, "total": {"N": "abc"}}), 3)
    with pytest.raises(MalformedRecordError) as caught:
        parsed.new_image()
    error = caught.value
    assert type(error) is MalformedRecordError
    assert (error.record_index, error.sequence_number, error.event_id) == (3, "000123", "1a2b")
    assert error.field == "dynamodb.NewImage.total"
    expected = "record 3 (seq 000123, event 1a2b): dynamodb.NewImage.total: N value is not a number (str of 3 characters)"
    assert str(error) == expected


def test_nested_bad_number_path() -> None:
    items = {"L": [{"M": {"price": {"N": "1"}}}, {"M": {"price": {"N": "2"}}}, {"M": {"price": {"N": "x"}}}]}
    parsed = parse_record(record(NewImage={"items": items}), 0)
    with pytest.raises(
        MalformedRecordError, match=r"dynamodb\.NewImage\.items\[2\]\.price: N value is not a number"
    ):
        parsed.new_image()


def test_bad_base64_in_a_record() -> None:
    parsed = parse_record(record(OldImage={"blob": {"B": "@@@"}}), 1)
    with pytest.raises(MalformedRecordError) as caught:
        parsed.old_image()
    assert caught.value.field == "dynamodb.OldImage.blob"
    assert "is not valid base64" in caught.value.reason


def test_unknown_type_tag_in_keys_fails_at_parse() -> None:
    with pytest.raises(MalformedRecordError) as caught:
        parse_record(record(Keys={"order_id": {"UUID": "x"}}), 2)
    error = caught.value
    assert error.field == "dynamodb.Keys.order_id"
    assert str(error) == "record 2 (seq 000123, event 1a2b): dynamodb.Keys.order_id: unknown type tag 'UUID'"


def test_missing_keys() -> None:
    with pytest.raises(MalformedRecordError) as caught:
        parse_record(record(Keys=None), 4)
    assert caught.value.field == "dynamodb.Keys"
    assert str(caught.value) == "record 4 (seq 000123, event 1a2b): dynamodb.Keys: required field is missing"


def test_empty_keys() -> None:
    with pytest.raises(MalformedRecordError, match=r"dynamodb\.Keys: must name at least one key attribute$"):
        parse_record(record(Keys={}), 0)


@pytest.mark.parametrize("sequence", ["12a4", "", "-1", "\uff11\uff12", " 12"])
def test_bad_sequence_number(sequence: str) -> None:
    with pytest.raises(MalformedRecordError) as caught:
        parse_record(record(SequenceNumber=sequence), 5)
    error = caught.value
    assert error.field == "dynamodb.SequenceNumber"
    assert error.reason == f"must be a string of digits, got {sequence!r}"
    assert error.sequence_number == sequence  # what the record said, to find it again
    assert "\n" not in str(error)


def test_sequence_number_must_be_a_string() -> None:
    with pytest.raises(MalformedRecordError) as caught:
        parse_record(record(SequenceNumber=123), 0)
    assert caught.value.field == "dynamodb.SequenceNumber"
    assert caught.value.reason == "Input should be a valid string, got 123"


def test_no_message_quotes_the_value() -> None:
    """Decoder messages reach the logs: a card number in a number attribute must not appear in them."""
    secret = "4111-1111-1111-1111"
    images = [
        {"total": {"N": secret}},
        {"total": {"S": {"x": secret}}},
        {"blob": {"B": secret}},
        {"flag": {"BOOL": secret}},
        {"tags": {"SS": [secret, 5]}},
        {"nums": {"NS": ["1", secret]}},
        {"n": {"NULL": secret}},
        {"m": {"M": [secret]}},
        {"l": {"L": secret}},
    ]
    for image in images:
        with pytest.raises(DecodeError) as caught:
            decode_image(image)
        assert "4111" not in str(caught.value), str(caught.value)
