"""One shard's records, read with GetRecords and reshaped into the records Lambda delivers.

Lambda's event source mapping hands the function GetRecords' records with two additions
(``eventSourceARN``, ``awsRegion``) and ``ApproximateCreationDateTime`` as epoch seconds; boto3's
client gives a ``datetime`` there and ``bytes`` for binary attributes, which Lambda's JSON carries
as base64. The reader keeps its own position so an expired iterator is replaced without a gap.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import ClientError

from projector.exceptions import ProjectorError
from projector.jsonsafe import jsonable
from projector.runner.shards import Shard

logger = logging.getLogger(__name__)

#: DynamoDB Streams answers at most 1,000 records per GetRecords call.
MAX_RECORDS_PER_CALL = 1000


@dataclass(frozen=True)
class StartingPosition:
    """Where a shard's reading begins: TRIM_HORIZON, LATEST, or after a checkpointed sequence number."""

    kind: str
    sequence_number: str | None = None

    def describe(self) -> str:
        return f"after {self.sequence_number}" if self.sequence_number else self.kind

    @classmethod
    def after(cls, sequence_number: str) -> StartingPosition:
        return cls("AFTER_SEQUENCE_NUMBER", sequence_number)

    @classmethod
    def trim_horizon(cls) -> StartingPosition:
        return cls("TRIM_HORIZON")

    @classmethod
    def latest(cls) -> StartingPosition:
        return cls("LATEST")


@dataclass
class ReadResult:
    """What one GetRecords call gave: Lambda-shaped records, and whether the shard has no more."""

    records: list[dict[str, Any]] = field(default_factory=list)
    end_of_shard: bool = False


class StreamReadError(ProjectorError):
    """Reading the stream failed in a way retrying will not fix (stream gone, access denied)."""


class ShardReader:
    """GetRecords over one shard, resuming from its own last position when an iterator expires."""

    def __init__(
        self,
        streams: Any,
        stream_arn: str,
        shard: Shard,
        start: StartingPosition,
        region: str,
    ) -> None:
        self.streams = streams
        self.stream_arn = stream_arn
        self.shard = shard
        self.region = region
        self._start = start
        self._iterator: str | None = None
        self._last_read: str | None = start.sequence_number if start.kind == "AFTER_SEQUENCE_NUMBER" else None
        self.end_of_shard = False

    @property
    def start(self) -> StartingPosition:
        return self._start

    @property
    def last_read(self) -> str | None:
        """The sequence number of the last record handed out (the position to resume after)."""
        return self._last_read

    def read(self, limit: int = MAX_RECORDS_PER_CALL) -> ReadResult:
        """One GetRecords call; transient errors propagate for the caller's backoff."""
        if self.end_of_shard:
            return ReadResult(end_of_shard=True)
        if self._iterator is None:
            self._iterator = self._new_iterator()
            if self._iterator is None:  # nothing left to read in a closed shard
                self.end_of_shard = True
                return ReadResult(end_of_shard=True)
        try:
            answer = self.streams.get_records(
                ShardIterator=self._iterator, Limit=max(1, min(limit, MAX_RECORDS_PER_CALL))
            )
        except ClientError as error:
            code = error.response.get("Error", {}).get("Code", "")
            if code == "ExpiredIteratorException":
                logger.info(
                    "shard %s: iterator expired; resuming after %s", self.shard.shard_id, self._last_read
                )
                self._iterator = None
                return ReadResult()
            if code == "TrimmedDataAccessException":
                self._restart_at_trim_horizon()
                return ReadResult()
            raise
        records = [to_lambda_record(raw, self.stream_arn, self.region) for raw in answer.get("Records", [])]
        if records:
            self._last_read = records[-1]["dynamodb"]["SequenceNumber"]
        self._iterator = answer.get("NextShardIterator")
        if self._iterator is None:
            self.end_of_shard = True
        return ReadResult(records=records, end_of_shard=self.end_of_shard)

    def _new_iterator(self) -> str | None:
        kwargs: dict[str, Any] = {"StreamArn": self.stream_arn, "ShardId": self.shard.shard_id}
        if self._last_read is not None:
            kwargs.update(ShardIteratorType="AFTER_SEQUENCE_NUMBER", SequenceNumber=self._last_read)
        else:
            kwargs["ShardIteratorType"] = self._start.kind
        try:
            return _iterator(self.streams.get_shard_iterator(**kwargs))
        except ClientError as error:
            code = error.response.get("Error", {}).get("Code", "")
            if code == "TrimmedDataAccessException":
                self._restart_at_trim_horizon()
                return _iterator(
                    self.streams.get_shard_iterator(
                        StreamArn=self.stream_arn,
                        ShardId=self.shard.shard_id,
                        ShardIteratorType="TRIM_HORIZON",
                    )
                )
            if code == "ResourceNotFoundException":
                raise StreamReadError(
                    f"shard {self.shard.shard_id} of {self.stream_arn} is gone: {error}"
                ) from None
            raise

    def _restart_at_trim_horizon(self) -> None:
        logger.error(
            "shard %s: records after %s were trimmed (older than 24 h) before they were applied; "
            "continuing at the oldest record still in the stream",
            self.shard.shard_id,
            self._last_read,
        )
        self._last_read = None
        self._start = StartingPosition.trim_horizon()
        self._iterator = None


def to_lambda_record(raw: dict[str, Any], stream_arn: str, region: str) -> dict[str, Any]:
    """GetRecords' record as Lambda's event carries it (JSON-ready: epoch seconds, base64 binaries)."""
    record = {key: _jsonable(value) for key, value in raw.items() if key != "dynamodb"}
    dynamodb = {key: _jsonable(value) for key, value in (raw.get("dynamodb") or {}).items()}
    if "ApproximateCreationDateTime" in dynamodb:
        dynamodb["ApproximateCreationDateTime"] = epoch_seconds(
            raw["dynamodb"]["ApproximateCreationDateTime"]
        )
    record["awsRegion"] = record.get("awsRegion") or region
    record["dynamodb"] = dynamodb
    record["eventSourceARN"] = stream_arn
    return record


def epoch_seconds(value: Any) -> int | float:
    """A ``datetime`` (boto3) or number as epoch seconds; whole seconds stay integers."""
    if isinstance(value, datetime):
        seconds = (value if value.tzinfo else value.replace(tzinfo=UTC)).timestamp()
    elif isinstance(value, str):
        moment = datetime.fromisoformat(value)
        seconds = (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()
    else:
        seconds = float(value)
    return int(seconds) if float(seconds).is_integer() else round(seconds, 6)


def _jsonable(value: Any) -> Any:
    return jsonable(value, lambda leaf: epoch_seconds(leaf) if isinstance(leaf, datetime) else leaf)


def _iterator(answer: dict[str, Any]) -> str | None:
    """GetShardIterator's iterator; none when the shard is closed and read to its end."""
    iterator = answer.get("ShardIterator")
    return None if iterator is None else str(iterator)
