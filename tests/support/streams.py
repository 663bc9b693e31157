"""Capture real records from the moto server's DynamoDB stream, shaped as Lambda delivers them."""

from __future__ import annotations

from typing import Any

from projector.records import parse_record


def stream_arn(dynamodb: Any, table: str) -> str:
    return dynamodb.describe_table(TableName=table)["Table"]["LatestStreamArn"]


def capture_records(
    dynamodb: Any, streams: Any, table: str, after: str | None = None
) -> list[dict[str, Any]]:
    """Every record on the table's stream (after sequence ``after``), as Lambda-shaped JSON dicts."""
    arn = stream_arn(dynamodb, table)
    region = streams.meta.region_name
    records: list[dict[str, Any]] = []
    for shard in streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"]:
        if after:
            iterator = streams.get_shard_iterator(
                StreamArn=arn,
                ShardId=shard["ShardId"],
                ShardIteratorType="AFTER_SEQUENCE_NUMBER",
                SequenceNumber=after,
            )["ShardIterator"]
        else:
            iterator = streams.get_shard_iterator(
                StreamArn=arn, ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON"
            )["ShardIterator"]
        while iterator:
            page = streams.get_records(ShardIterator=iterator, Limit=1000)
            for raw in page["Records"]:
                lambda_record = parse_record(raw, len(records)).to_lambda_json()
                lambda_record["eventSourceARN"] = arn
                lambda_record["awsRegion"] = region
                records.append(lambda_record)
            if not page["Records"]:
                break
            iterator = page.get("NextShardIterator")
    return records


def event(records: list[dict[str, Any]]) -> dict[str, Any]:
    return {"Records": records}
