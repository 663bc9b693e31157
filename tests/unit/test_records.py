"""Stream record models: Lambda-shaped and GetRecords-shaped records parse, decode and dump back exactly."""

from __future__ import annotations

import copy
import json
import pickle
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from projector.records import (
    MalformedRecordError,
    StreamEvent,
    StreamRecord,
    StreamRecordData,
    UserIdentity,
    parse_record,
)

pytestmark = pytest.mark.unit

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "records"
NAMES = ("insert", "modify", "remove", "ttl_remove")
ITEMS = [
    {"sku": "MUG-BLU-01", "title": "Blue ceramic mug", "qty": Decimal(2), "price": Decimal("12.5")},
    {"sku": "TWL-LIN-03", "title": "Linen tea towel, set of 3", "qty": Decimal(1), "price": Decimal("18.99")},
    {"sku": "KTL-STL-02", "title": "Stovetop steel kettle", "qty": Decimal(1), "price": Decimal("42.48")},
]


def fixture(name: str) -> dict[str, Any]:
    return json.loads((FIXTURES / f"{name}.json").read_text())


def order(status: str, version: int) -> dict[str, Any]:
    return {
        "order_id": "ord-20240501-0001",
        "customer_id": "cust-00042",
        "status": status,
        "total": Decimal("86.47"),
        "currency": "EUR",
        "created_at": "2024-05-01T12:00:00.000Z",
        "items": ITEMS,
        "note": "Leave with the neighbour at no. 12 if nobody is in",
        "version": Decimal(version),
    }


def get_records_shape(raw: dict[str, Any], moment: datetime) -> dict[str, Any]:
    """What boto3's dynamodbstreams.get_records returns: a datetime, no eventSourceARN, bytes for B."""
    shaped = copy.deepcopy(raw)
    del shaped["eventSourceARN"]
    shaped["dynamodb"]["ApproximateCreationDateTime"] = moment
    return shaped


# --- Lambda-shaped records --------------------------------------------------------------------------------


def test_insert() -> None:
    record = parse_record(fixture("insert"), 0)
    assert isinstance(record, StreamRecord)
    assert isinstance(record.dynamodb, StreamRecordData)
    assert record.eventName == "INSERT"
    assert record.eventSourceARN == (
        "arn:aws:dynamodb:eu-west-1:123456789012:table/orders/stream/2024-05-01T00:00:00.000"
    )
    assert record.sequence_number == "4421584500000000017450439091"
    assert record.created_at == 1714564800.0
    assert isinstance(record.created_at, float)
    assert record.index == 0
    assert record.keys() == {"order_id": "ord-20240501-0001"}
    assert record.new_image() == order("PENDING", 1)
    assert record.old_image() is None
    assert record.userIdentity is None
    assert not record.is_ttl_delete


def test_modify_decodes_both_images_exactly() -> None:
    record = parse_record(fixture("modify"), 1)
    new, old = record.new_image(), record.old_image()
    assert new == order("PAID", 2)
    assert old == order("PENDING", 1)
    assert type(new["total"]) is Decimal and str(new["total"]) == "86.47"
    assert sum(item["qty"] * item["price"] for item in new["items"]) == new["total"]


def test_remove_by_the_application() -> None:
    record = parse_record(fixture("remove"), 2)
    assert record.eventName == "REMOVE"
    assert record.new_image() is None
    assert record.old_image() == order("PAID", 2)
    assert not record.is_ttl_delete


def test_ttl_remove() -> None:
    record = parse_record(fixture("ttl_remove"), 3)
    assert record.userIdentity == UserIdentity(type="Service", principalId="dynamodb.amazonaws.com")
    assert record.is_ttl_delete
    old = record.old_image()
    assert old is not None
    assert old["status"] == "CANCELLED"
    assert old["note"] == ""
    assert old["expires_at"] == Decimal(1717243200)


def test_only_dynamodb_itself_makes_a_ttl_delete() -> None:
    raw = fixture("ttl_remove")
    raw["userIdentity"]["principalId"] = "someone.amazonaws.com"
    assert not parse_record(raw, 0).is_ttl_delete
    raw = fixture("ttl_remove")
    raw["eventName"] = "MODIFY"
    assert not parse_record(raw, 0).is_ttl_delete


@pytest.mark.parametrize("name", NAMES)
def test_to_lambda_json_reproduces_the_record(name: str) -> None:
    raw = fixture(name)
    dumped = parse_record(raw, 0).to_lambda_json()
    assert dumped == raw
    assert type(dumped["dynamodb"]["ApproximateCreationDateTime"]) is int
    assert json.loads(json.dumps(dumped)) == raw
    assert parse_record(dumped, 0).to_lambda_json() == raw


def test_extra_fields_are_kept() -> None:
    raw = fixture("insert")
    raw["eventSourceMappingUUID"] = "b3c8-4d1e"
    raw["dynamodb"]["ApproximateCreationDateTimePrecision"] = "MILLISECOND"
    raw["userIdentity"] = {"type": "Service", "principalId": "dynamodb.amazonaws.com", "note": "kept"}
    assert parse_record(raw, 0).to_lambda_json() == raw


def test_fractional_timestamps_stay_fractional() -> None:
    raw = fixture("insert")
    raw["dynamodb"]["ApproximateCreationDateTime"] = 1714564800.25
    record = parse_record(raw, 0)
    assert record.created_at == 1714564800.25
    assert record.to_lambda_json()["dynamodb"]["ApproximateCreationDateTime"] == 1714564800.25


def test_stream_event_parses_every_record_and_numbers_them() -> None:
    event = StreamEvent.model_validate({"Records": [fixture(name) for name in NAMES]})
    assert [record.eventName for record in event.Records] == ["INSERT", "MODIFY", "REMOVE", "REMOVE"]
    assert [record.index for record in event.Records] == [0, 1, 2, 3]
    sequences = [int(record.sequence_number) for record in event.Records]
    assert sequences == sorted(sequences)


def test_stream_event_reports_the_bad_record_not_a_pydantic_trace() -> None:
    bad = fixture("modify")
    bad["eventName"] = "UPSERT"
    with pytest.raises(MalformedRecordError) as caught:
        StreamEvent.model_validate({"Records": [fixture("insert"), bad]})
    error = caught.value
    assert error.record_index == 1
    assert error.field == "eventName"
    assert str(error) == (
        "record 1 (seq 4421584600000000017450440012, event c81e728d9d4c2f636f067f89cc14862c): "
        "eventName: Input should be 'INSERT', 'MODIFY' or 'REMOVE', got 'UPSERT'"
    )


def test_one_bad_record_does_not_cost_the_batch() -> None:
    """What the engine does: parse record by record, keep the good ones, dead-letter the bad one."""
    batch = [fixture("insert"), {"eventID": "x", "dynamodb": "nonsense"}, fixture("modify"), "junk"]
    good, bad = [], []
    for index, raw in enumerate(batch):
        try:
            good.append(parse_record(raw, index))
        except MalformedRecordError as error:
            bad.append(error)
    assert [record.index for record in good] == [0, 2]
    assert [error.record_index for error in bad] == [1, 3]
    assert bad[0].event_id == "x" and bad[0].sequence_number is None
    assert str(bad[0]).startswith("record 1 (event x): ")
    assert "more problems" in bad[0].reason
    assert bad[1].field is None
    assert str(bad[1]).startswith("record 3: Input should be a valid dictionary")


# --- GetRecords-shaped records ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "moment",
    [
        datetime(2024, 5, 1, 12, 0, tzinfo=UTC),
        datetime(2024, 5, 1, 14, 0, tzinfo=timezone(timedelta(hours=2))),  # boto3 gives local time
        datetime(2024, 5, 1, 12, 0),  # naive (moto's utcnow): taken as UTC
    ],
)
def test_get_records_shape(moment: datetime) -> None:
    raw = get_records_shape(fixture("insert"), moment)
    record = parse_record(raw, 0)
    assert record.eventSourceARN is None
    assert record.created_at == 1714564800.0
    assert record.new_image() == order("PENDING", 1)
    expected = fixture("insert")
    del expected["eventSourceARN"]
    assert record.to_lambda_json() == expected


def test_get_records_binary_values_dump_as_base64() -> None:
    raw = get_records_shape(fixture("insert"), datetime(2024, 5, 1, 12, 0, tzinfo=UTC))
    raw["dynamodb"]["NewImage"]["receipt"] = {"B": b"\x00\xffPDF"}
    raw["dynamodb"]["NewImage"]["thumbs"] = {"BS": [b"\x01", b"\x02"]}
    record = parse_record(raw, 0)
    image = record.new_image()
    assert image is not None
    assert image["receipt"] == b"\x00\xffPDF"
    assert image["thumbs"] == {b"\x01", b"\x02"}
    dumped = record.to_lambda_json()
    assert dumped["dynamodb"]["NewImage"]["receipt"] == {"B": "AP9QREY="}
    assert dumped["dynamodb"]["NewImage"]["thumbs"] == {"BS": ["AQ==", "Ag=="]}
    assert parse_record(json.loads(json.dumps(dumped)), 0).new_image() == image


@pytest.mark.parametrize(
    ("stamp", "seconds"),
    [
        ("2024-05-01T12:00:00Z", 1714564800.0),
        ("2024-05-01T12:00:00.500000", 1714564800.5),
        ("2024-05-01T14:00:00+02:00", 1714564800.0),
        ("1714564800", 1714564800.0),
        (Decimal("1714564800.5"), 1714564800.5),
    ],
)
def test_timestamp_forms(stamp: Any, seconds: float) -> None:
    raw = fixture("insert")
    raw["dynamodb"]["ApproximateCreationDateTime"] = stamp
    assert parse_record(raw, 0).created_at == seconds


@pytest.mark.parametrize("stamp", ["yesterday", True, None, float("nan"), [1]])
def test_bad_timestamps(stamp: Any) -> None:
    raw = fixture("insert")
    raw["dynamodb"]["ApproximateCreationDateTime"] = stamp
    with pytest.raises(MalformedRecordError) as caught:
        parse_record(raw, 7)
    assert caught.value.field == "dynamodb.ApproximateCreationDateTime"
    assert caught.value.record_index == 7


def test_get_records_from_a_real_stream() -> None:
    """Records as boto3 returns them from moto's in-process DynamoDB Streams, binaries included."""
    moto = pytest.importorskip("moto")
    import boto3

    with moto.mock_aws():
        dynamodb = boto3.client("dynamodb", region_name="eu-west-1")
        table = dynamodb.create_table(
            TableName="orders",
            KeySchema=[{"AttributeName": "order_id", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "order_id", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
            StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"},
        )["TableDescription"]
        item = fixture("insert")["dynamodb"]["NewImage"] | {"receipt": {"B": b"\x00\xff"}}
        dynamodb.put_item(TableName="orders", Item=item)
        dynamodb.delete_item(TableName="orders", Key={"order_id": {"S": "ord-20240501-0001"}})
        # An explicit endpoint: botocore would otherwise derive one from the ARN that moto does not route.
        endpoint = "https://streams.dynamodb.eu-west-1.amazonaws.com"
        streams = boto3.client("dynamodbstreams", region_name="eu-west-1", endpoint_url=endpoint)
        arn = table["LatestStreamArn"]
        shard = streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"][0]["ShardId"]
        iterator = streams.get_shard_iterator(StreamArn=arn, ShardId=shard, ShardIteratorType="TRIM_HORIZON")
        raws = streams.get_records(ShardIterator=iterator["ShardIterator"])["Records"]

    assert isinstance(raws[0]["dynamodb"]["ApproximateCreationDateTime"], datetime)
    records = [parse_record(raw, index) for index, raw in enumerate(raws)]
    assert [record.eventName for record in records] == ["INSERT", "REMOVE"]
    expected = order("PENDING", 1) | {"receipt": b"\x00\xff"}
    assert records[0].new_image() == expected
    assert records[1].old_image() == expected
    assert records[0].keys() == {"order_id": "ord-20240501-0001"}
    assert abs(records[0].created_at - datetime.now(UTC).timestamp()) < 300
    dumped = records[0].to_lambda_json()
    assert "eventSourceARN" not in dumped
    assert isinstance(dumped["dynamodb"]["ApproximateCreationDateTime"], int | float)
    assert dumped["dynamodb"]["NewImage"]["receipt"] == {"B": "AP8="}
    assert parse_record(json.loads(json.dumps(dumped)), 0).new_image() == expected


# --- the error type ---------------------------------------------------------------------------------------


def test_error_survives_pickling() -> None:
    error = MalformedRecordError(
        "N value 'abc' is not a number",
        record_index=3,
        sequence_number="000123",
        event_id="1a2b",
        field="dynamodb.NewImage.total",
    )
    copy_ = pickle.loads(pickle.dumps(error))
    assert str(copy_) == str(error)
    assert (copy_.record_index, copy_.field) == (3, "dynamodb.NewImage.total")


def test_error_without_context() -> None:
    assert str(MalformedRecordError("empty batch")) == "empty batch"
    assert str(MalformedRecordError("bad", record_index=0)) == "record 0: bad"


# --- robustness: whatever arrives, one record fails alone and with a MalformedRecordError -----------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda kids: st.lists(kids, max_size=4) | st.dictionaries(st.text(max_size=8), kids, max_size=4),
    max_leaves=12,
)
PATHS = [
    ("eventID",),
    ("eventName",),
    ("userIdentity",),
    ("dynamodb",),
    ("dynamodb", "ApproximateCreationDateTime"),
    ("dynamodb", "Keys"),
    ("dynamodb", "Keys", "order_id"),
    ("dynamodb", "NewImage"),
    ("dynamodb", "NewImage", "total"),
    ("dynamodb", "NewImage", "items", "L"),
    ("dynamodb", "OldImage", "items", "L", 2, "M", "price"),
    ("dynamodb", "SequenceNumber"),
]


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(PATHS), json_values)
def test_any_damage_is_a_malformed_record_error(path: tuple[Any, ...], junk: Any) -> None:
    raw = fixture("modify")
    node = raw
    for step in path[:-1]:
        node = node[step]
    node[path[-1]] = junk
    try:
        record = parse_record(raw, 9)
        record.keys()
        record.new_image()
        record.old_image()
        record.to_lambda_json()
    except MalformedRecordError as error:
        assert error.record_index == 9
        assert "\n" not in str(error)


@given(json_values)
def test_any_json_is_a_record_or_a_malformed_record_error(junk: Any) -> None:
    with pytest.raises(MalformedRecordError):
        parse_record(junk, 0)


def test_absurd_nesting_is_malformed_not_a_crash() -> None:
    raw = fixture("insert")
    deep: dict[str, Any] = {"S": "bottom"}
    for _ in range(5000):
        deep = {"L": [deep]}
    raw["dynamodb"]["NewImage"]["deep"] = deep
    with pytest.raises(MalformedRecordError, match="nested too deeply"):
        parse_record(raw, 0).new_image()
