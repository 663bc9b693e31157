"""Synthetic DynamoDB Streams for the runner's unit tests: shards with lineage, splits, closing, paging.

moto has one shard per table and never splits, so lineage is exercised here. The module's own tests
check the fake behaves like the service where the runner relies on it.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pytest
from botocore.exceptions import ClientError

pytestmark = pytest.mark.unit

ARN = "arn:aws:dynamodb:us-east-1:123456789012:table/orders/stream/2026-01-01T00:00:00.000"
_numbers = itertools.count(100)


def client_error(code: str, status: int = 400) -> ClientError:
    return ClientError(
        {"Error": {"Code": code, "Message": code}, "ResponseMetadata": {"HTTPStatusCode": status}},
        "Operation",
    )


@dataclass
class FakeShard:
    shard_id: str
    parent: str | None = None
    records: list[dict[str, Any]] = field(default_factory=list)
    closed: bool = False
    first: str = field(default_factory=lambda: str(next(_numbers) * 1000))


class FakeStreams:
    """Just enough of the dynamodbstreams client: DescribeStream (paged), GetShardIterator, GetRecords."""

    def __init__(self, arn: str = ARN, page_size: int = 2) -> None:
        self.arn = arn
        self.page_size = page_size
        self.shards: dict[str, FakeShard] = {}
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.fail_next: list[ClientError] = []
        self._seq = itertools.count(1)

    # building -----------------------------------------------------------------------------------------
    def add_shard(self, shard_id: str, parent: str | None = None) -> FakeShard:
        shard = FakeShard(shard_id, parent)
        self.shards[shard_id] = shard
        return shard

    def put(self, shard_id: str, key: str, when: float = 1_700_000_000.5) -> str:
        shard = self.shards[shard_id]
        assert not shard.closed, "a closed shard takes no records"
        number = str(int(shard.first) + next(self._seq))
        shard.records.append(
            {
                "eventID": f"e{number}",
                "eventName": "INSERT",
                "eventVersion": "1.1",
                "eventSource": "aws:dynamodb",
                "awsRegion": "us-east-1",
                "dynamodb": {
                    "ApproximateCreationDateTime": datetime.fromtimestamp(when, UTC),
                    "Keys": {"id": {"S": key}},
                    "NewImage": {"id": {"S": key}, "blob": {"B": b"\x00\x01"}},
                    "SequenceNumber": number,
                    "SizeBytes": 20,
                    "StreamViewType": "NEW_AND_OLD_IMAGES",
                },
            }
        )
        return number

    def close(self, shard_id: str) -> None:
        self.shards[shard_id].closed = True

    # the client -------------------------------------------------------------------------------------
    def describe_stream(self, StreamArn: str, ExclusiveStartShardId: str | None = None) -> dict[str, Any]:
        self.calls.append(("describe_stream", {"ExclusiveStartShardId": ExclusiveStartShardId}))
        ids = list(self.shards)
        start = ids.index(ExclusiveStartShardId) + 1 if ExclusiveStartShardId else 0
        page = ids[start : start + self.page_size]
        shards = []
        for shard_id in page:
            shard = self.shards[shard_id]
            numbers = {"StartingSequenceNumber": shard.first}
            if shard.closed:
                last = shard.records[-1]["dynamodb"]["SequenceNumber"] if shard.records else shard.first
                numbers["EndingSequenceNumber"] = last
            item: dict[str, Any] = {"ShardId": shard_id, "SequenceNumberRange": numbers}
            if shard.parent:
                item["ParentShardId"] = shard.parent
            shards.append(item)
        description: dict[str, Any] = {"StreamArn": StreamArn, "Shards": shards}
        if start + self.page_size < len(ids):
            description["LastEvaluatedShardId"] = page[-1]
        return {"StreamDescription": description}

    def get_shard_iterator(
        self, StreamArn: str, ShardId: str, ShardIteratorType: str, SequenceNumber: str | None = None
    ) -> dict[str, Any]:
        self.calls.append(
            (
                "get_shard_iterator",
                {
                    "ShardId": ShardId,
                    "ShardIteratorType": ShardIteratorType,
                    "SequenceNumber": SequenceNumber,
                },
            )
        )
        shard = self.shards[ShardId]
        numbers = [record["dynamodb"]["SequenceNumber"] for record in shard.records]
        if ShardIteratorType == "TRIM_HORIZON":
            position = 0
        elif ShardIteratorType == "LATEST":
            position = len(numbers)
        elif ShardIteratorType == "AT_SEQUENCE_NUMBER":
            position = numbers.index(SequenceNumber)
        else:
            position = next(
                (index for index, number in enumerate(numbers) if int(number) > int(SequenceNumber)),
                len(numbers),
            )
        return {"ShardIterator": f"{ShardId}|{position}"}

    def get_records(self, ShardIterator: str, Limit: int = 1000) -> dict[str, Any]:
        self.calls.append(("get_records", {"ShardIterator": ShardIterator, "Limit": Limit}))
        if self.fail_next:
            raise self.fail_next.pop(0)
        shard_id, _, position_text = ShardIterator.rpartition("|")
        shard, position = self.shards[shard_id], int(position_text)
        records = shard.records[position : position + Limit]
        answer: dict[str, Any] = {"Records": [dict(record) for record in records]}
        end = position + len(records)
        if not (shard.closed and end >= len(shard.records)):
            answer["NextShardIterator"] = f"{shard_id}|{end}"
        return answer


class FakeDynamoDB:
    """DescribeTable only."""

    class exceptions:
        class ResourceNotFoundException(Exception):
            pass

    def __init__(self, tables: dict[str, str | None]) -> None:
        self.tables = tables

    def describe_table(self, TableName: str) -> dict[str, Any]:
        if TableName not in self.tables:
            raise self.exceptions.ResourceNotFoundException(TableName)
        arn = self.tables[TableName]
        table: dict[str, Any] = {"TableName": TableName}
        if arn:
            table["LatestStreamArn"] = arn
            table["StreamSpecification"] = {"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"}
        return {"Table": table}


def test_fake_pages_and_closes() -> None:
    streams = FakeStreams(page_size=1)
    streams.add_shard("a")
    streams.add_shard("b", parent="a")
    first = streams.put("a", "k1")
    streams.close("a")
    page = streams.describe_stream(StreamArn=ARN)["StreamDescription"]
    assert page["LastEvaluatedShardId"] == "a"
    assert page["Shards"][0]["SequenceNumberRange"]["EndingSequenceNumber"] == first
    iterator = streams.get_shard_iterator(StreamArn=ARN, ShardId="a", ShardIteratorType="TRIM_HORIZON")
    answer = streams.get_records(ShardIterator=iterator["ShardIterator"])
    assert [record["dynamodb"]["SequenceNumber"] for record in answer["Records"]] == [first]
    assert "NextShardIterator" not in answer
