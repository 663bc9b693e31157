"""Parallel Scan of the source table, one segment at a time, with throttling retried and the rate shared.

Pages are read with ``ConsistentRead``: a page then reflects every write acknowledged before its
request was sent, which is what the version rules assume of ``BackfillStamp.read_at``.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from projector.retry import Deadline, RetryPolicy, retrying
from projector.retry.transient import is_transient

if TYPE_CHECKING:
    from projector.source.ratelimit import TokenBucket

logger = logging.getLogger(__name__)

# A long scan outlives many throttling bursts: more patience than a Lambda batch gets.
SCAN_POLICY = RetryPolicy(max_attempts=12, initial_wait_s=0.1, max_wait_s=10.0, jitter_s=0.2)


@dataclass(frozen=True, slots=True)
class SourceTable:
    """What the scan needs to know of the source: its key attributes (and their S/N/B types), ItemCount."""

    name: str
    key_attributes: tuple[str, ...]
    key_types: tuple[str, ...]
    item_count: int

    @classmethod
    def describe(cls, client: Any, name: str) -> SourceTable:
        """The table's key schema and item count; a network fault at start is waited out (up to a minute)."""
        for attempt in retrying(Deadline.after(60), is_transient, SCAN_POLICY, f"DescribeTable {name}"):
            with attempt:
                table = client.describe_table(TableName=name)["Table"]
        order = {"HASH": 0, "RANGE": 1}
        keys = [
            entry["AttributeName"] for entry in sorted(table["KeySchema"], key=lambda e: order[e["KeyType"]])
        ]
        types = {entry["AttributeName"]: entry["AttributeType"] for entry in table["AttributeDefinitions"]}
        return cls(name, tuple(keys), tuple(types[key] for key in keys), int(table.get("ItemCount", 0)))


@dataclass(frozen=True, slots=True)
class Page:
    """One Scan page: raw DynamoDB JSON items, where to go on (None: segment done), when it was asked for."""

    segment: int
    items: list[dict[str, Any]]
    next_key: dict[str, Any] | None
    read_at: float


class SegmentScanner:
    """Reads the pages of any segment of one parallel scan; safe to share between worker threads."""

    def __init__(
        self,
        client: Any,
        table: str,
        total_segments: int,
        page_size: int,
        stop: threading.Event,
        limiter: TokenBucket | None = None,
        policy: RetryPolicy = SCAN_POLICY,
    ) -> None:
        self.client = client
        self.table = table
        self.total_segments = total_segments
        self.page_size = page_size
        self.stop = stop
        self.limiter = limiter
        self.policy = policy

    def pages(self, segment: int, start_key: dict[str, Any] | None = None) -> Iterator[Page]:
        """Pages of ``segment`` from ``start_key`` on, until the segment ends or the run is stopped."""
        key = start_key
        while not self.stop.is_set():
            if self.limiter is not None and not self.limiter.acquire(self.stop, self.page_size):
                return
            read_at, response = self._scan(segment, key)
            items = response.get("Items", [])
            if self.limiter is not None:
                self.limiter.refund(self.page_size - len(items))
            key = response.get("LastEvaluatedKey")
            yield Page(segment, items, key, read_at)
            if key is None:
                return

    def _scan(self, segment: int, key: dict[str, Any] | None) -> tuple[float, dict[str, Any]]:
        request: dict[str, Any] = {
            "TableName": self.table,
            "Segment": segment,
            "TotalSegments": self.total_segments,
            "ConsistentRead": True,
            "Limit": self.page_size,
        }
        if key is not None:
            request["ExclusiveStartKey"] = key

        def attempt() -> tuple[float, dict[str, Any]]:
            sent_at = time.time()  # the stamp is the moment the request that succeeded was sent
            return sent_at, self.client.scan(**request)

        what = f"Scan of {self.table} segment {segment}/{self.total_segments}"
        return retrying(Deadline.never(), is_transient, self.policy, what)(attempt)
