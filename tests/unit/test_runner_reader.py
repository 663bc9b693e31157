"""GetRecords into Lambda-shaped records, and a reader that never loses its place."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime

import pytest
from test_runner_fakes import ARN, FakeStreams, client_error

from projector.records.types import parse_record
from projector.retry.transient import is_transient
from projector.runner.reader import (
    ShardReader,
    StartingPosition,
    epoch_seconds,
    to_lambda_record,
)
from projector.runner.shards import Shard

pytestmark = pytest.mark.unit


def _raw() -> dict:
    return {
        "eventID": "1",
        "eventName": "MODIFY",
        "eventVersion": "1.1",
        "eventSource": "aws:dynamodb",
        "awsRegion": "eu-west-1",
        "dynamodb": {
            "ApproximateCreationDateTime": datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC),
            "Keys": {"order_id": {"S": "o-1"}},
            "NewImage": {"order_id": {"S": "o-1"}, "blob": {"B": b"\xff\x00"}, "tags": {"BS": [b"a"]}},
            "SequenceNumber": "111",
            "SizeBytes": 10,
            "StreamViewType": "NEW_AND_OLD_IMAGES",
        },
    }


def test_records_look_like_lambdas_event() -> None:
    record = to_lambda_record(_raw(), ARN, "us-east-1")

    assert record["eventSourceARN"] == ARN
    assert record["awsRegion"] == "eu-west-1"  # the record's own region wins
    assert record["dynamodb"]["ApproximateCreationDateTime"] == 1767323045
    assert isinstance(record["dynamodb"]["ApproximateCreationDateTime"], int)
    assert record["dynamodb"]["NewImage"]["blob"] == {"B": base64.b64encode(b"\xff\x00").decode()}
    assert record["dynamodb"]["NewImage"]["tags"] == {"BS": [base64.b64encode(b"a").decode()]}
    json.dumps(record)  # JSON-ready, as it must be for HTTP and dead letters
    assert parse_record(record, 0).dynamodb.SequenceNumber == "111"


def test_region_is_filled_in_when_missing() -> None:
    raw = _raw()
    del raw["awsRegion"]
    assert to_lambda_record(raw, ARN, "us-east-1")["awsRegion"] == "us-east-1"


def test_epoch_seconds_keeps_fractions_and_naive_means_utc() -> None:
    assert epoch_seconds(datetime(1970, 1, 1, 0, 0, 1, 500000)) == 1.5
    assert epoch_seconds("1970-01-01T00:00:02") == 2
    assert epoch_seconds(7) == 7


def _reader(streams: FakeStreams, start: StartingPosition) -> ShardReader:
    return ShardReader(streams, ARN, Shard("s"), start, "us-east-1")


def test_reads_in_order_then_sees_the_end_of_a_closed_shard() -> None:
    streams = FakeStreams()
    streams.add_shard("s")
    numbers = [streams.put("s", f"k{index}") for index in range(5)]
    streams.close("s")
    reader = _reader(streams, StartingPosition.trim_horizon())

    first = reader.read(limit=3)
    second = reader.read(limit=3)

    assert [r["dynamodb"]["SequenceNumber"] for r in first.records + second.records] == numbers
    assert not first.end_of_shard and second.end_of_shard and reader.end_of_shard
    assert reader.read().end_of_shard


def test_resumes_after_a_checkpoint() -> None:
    streams = FakeStreams()
    streams.add_shard("s")
    numbers = [streams.put("s", f"k{index}") for index in range(4)]
    reader = _reader(streams, StartingPosition.after(numbers[1]))
    assert [r["dynamodb"]["SequenceNumber"] for r in reader.read().records] == numbers[2:]
    assert (
        "get_shard_iterator",
        {"ShardId": "s", "ShardIteratorType": "AFTER_SEQUENCE_NUMBER", "SequenceNumber": numbers[1]},
    ) in streams.calls


def test_an_expired_iterator_resumes_after_the_last_record_read() -> None:
    streams = FakeStreams()
    streams.add_shard("s")
    numbers = [streams.put("s", f"k{index}") for index in range(4)]
    reader = _reader(streams, StartingPosition.trim_horizon())
    assert len(reader.read(limit=2).records) == 2
    streams.fail_next.append(client_error("ExpiredIteratorException"))
    assert reader.read().records == []
    assert [r["dynamodb"]["SequenceNumber"] for r in reader.read().records] == numbers[2:]


def test_trimmed_data_restarts_at_the_trim_horizon() -> None:
    streams = FakeStreams()
    streams.add_shard("s")
    numbers = [streams.put("s", f"k{index}") for index in range(2)]
    reader = _reader(streams, StartingPosition.trim_horizon())
    streams.fail_next.append(client_error("TrimmedDataAccessException"))
    assert reader.read().records == []
    assert [r["dynamodb"]["SequenceNumber"] for r in reader.read().records] == numbers


def test_latest_skips_what_is_already_there() -> None:
    streams = FakeStreams()
    streams.add_shard("s")
    streams.put("s", "old")
    reader = _reader(streams, StartingPosition.latest())
    assert reader.read().records == []
    new = streams.put("s", "new")
    assert [r["dynamodb"]["SequenceNumber"] for r in reader.read().records] == [new]


def test_transient_errors() -> None:
    assert is_transient(client_error("ProvisionedThroughputExceededException"))
    assert is_transient(client_error("Whatever", status=503))
    assert not is_transient(client_error("AccessDeniedException"))
    assert not is_transient(ValueError("bug"))
