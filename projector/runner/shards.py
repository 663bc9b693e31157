"""Where the stream is and which of its shards may be read now.

DynamoDB Streams split and roll shards over: a child holds later changes of the same keys as its
parent, so a child is read only once its parent has been read to its end (the lineage rule Lambda's
event source mapping and the KCL follow). A parent that is no longer described (trimmed after 24 h)
does not block its children.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from projector.exceptions import ProjectorError

logger = logging.getLogger(__name__)


class StreamNotFound(ProjectorError):
    """The source table does not exist or has no stream enabled."""


@dataclass(frozen=True)
class Shard:
    """One shard as DescribeStream reports it."""

    shard_id: str
    parent_shard_id: str | None = None
    starting_sequence_number: str | None = None
    ending_sequence_number: str | None = None

    @property
    def closed(self) -> bool:
        """A closed shard takes no new records; it is read to its end and then finished."""
        return self.ending_sequence_number is not None

    @classmethod
    def from_description(cls, item: dict[str, Any]) -> Shard:
        numbers = item.get("SequenceNumberRange") or {}
        return cls(
            shard_id=item["ShardId"],
            parent_shard_id=item.get("ParentShardId") or None,
            starting_sequence_number=numbers.get("StartingSequenceNumber"),
            ending_sequence_number=numbers.get("EndingSequenceNumber"),
        )


def find_stream_arn(dynamodb: Any, table: str) -> str:
    """The table's current stream (DescribeTable's LatestStreamArn), or a clear StreamNotFound."""
    try:
        description = dynamodb.describe_table(TableName=table)["Table"]
    except dynamodb.exceptions.ResourceNotFoundException:
        raise StreamNotFound(f"table {table!r} does not exist (PROJECTOR_SOURCE_TABLE)") from None
    arn = description.get("LatestStreamArn")
    enabled = (description.get("StreamSpecification") or {}).get("StreamEnabled", bool(arn))
    if not arn or not enabled:
        raise StreamNotFound(
            f"table {table!r} has no stream: enable one with StreamViewType NEW_AND_OLD_IMAGES "
            "(projector setup --with-source-table creates the local table with its stream)"
        )
    return str(arn)


def describe_shards(streams: Any, stream_arn: str) -> list[Shard]:
    """Every shard of the stream, across DescribeStream's pages, oldest first."""
    shards: list[Shard] = []
    start: str | None = None
    while True:
        kwargs: dict[str, Any] = {"StreamArn": stream_arn}
        if start:
            kwargs["ExclusiveStartShardId"] = start
        description = streams.describe_stream(**kwargs)["StreamDescription"]
        shards.extend(Shard.from_description(item) for item in description.get("Shards", []))
        start = description.get("LastEvaluatedShardId")
        if not start:
            return order_by_lineage(shards)


def order_by_lineage(shards: Iterable[Shard]) -> list[Shard]:
    """Parents before children, otherwise by starting sequence number (stable for equal ones)."""
    by_id = {shard.shard_id: shard for shard in shards}
    ordered: list[Shard] = []
    placed: set[str] = set()

    def place(shard: Shard, trail: frozenset[str]) -> None:
        if shard.shard_id in placed:
            return
        parent = by_id.get(shard.parent_shard_id or "")
        if parent is not None and parent.shard_id not in trail:  # `trail` guards against a bad cycle
            place(parent, trail | {shard.shard_id})
        placed.add(shard.shard_id)
        ordered.append(shard)

    for shard in sorted(by_id.values(), key=_start_key):
        place(shard, frozenset())
    return ordered


def ready_shards(shards: Sequence[Shard], finished: Collection[str], busy: Collection[str]) -> list[Shard]:
    """Shards that may start now: not finished, not being read, and with no unfinished parent in view."""
    described = {shard.shard_id for shard in shards}
    ready = []
    for shard in order_by_lineage(shards):
        if shard.shard_id in finished or shard.shard_id in busy:
            continue
        parent = shard.parent_shard_id
        if parent is None or parent in finished or parent not in described:
            ready.append(shard)
    return ready


def skipped_by_latest(shards: Sequence[Shard]) -> list[Shard]:
    """Shards that `--from latest` never reads on a fresh stream: closed ones (their changes are old)."""
    return [shard for shard in shards if shard.closed]


def _start_key(shard: Shard) -> tuple[int, str]:
    number = shard.starting_sequence_number
    return (int(number) if number and number.isdigit() else 0, shard.shard_id)
