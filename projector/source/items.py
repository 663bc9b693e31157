"""The source table as verify reads it: a parallel consistent scan, and consistent re-reads by id."""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from projector.records import DecodeError, decode_image
from projector.retry import Deadline
from projector.retry.batch_get import batch_get_consistent
from projector.source.scanner import SegmentScanner, SourceTable

if TYPE_CHECKING:
    from projector.source.scanner import Page

logger = logging.getLogger(__name__)


class Source:
    """Reads the whole source table in parallel, or given items again."""

    def __init__(self, client: Any, table: SourceTable, segments: int, page_size: int = 500) -> None:
        self.client = client
        self.table = table
        self.segments = segments
        self.page_size = page_size
        self.stop = threading.Event()

    @classmethod
    def of(cls, client: Any, table_name: str, segments: int) -> Source:
        """The source table named ``table_name``, its key schema read from DynamoDB."""
        return cls(client, SourceTable.describe(client, table_name), segments)

    def scan(self, on_page: Callable[[Page], None]) -> int:
        """Call ``on_page`` for every page (from worker threads); the number of items read."""
        scanner = SegmentScanner(self.client, self.table.name, self.segments, self.page_size, self.stop)
        counted: list[int] = []

        def segment(number: int) -> None:
            for page in scanner.pages(number):
                on_page(page)
                counted.append(len(page.items))

        with ThreadPoolExecutor(max_workers=self.segments, thread_name_prefix="verify") as pool:
            for future in [pool.submit(segment, number) for number in range(self.segments)]:
                future.result()
        return sum(counted)

    def key_of(self, item_id: str) -> dict[str, Any]:
        """The DynamoDB key of an item id as projections make it (``Projection.item_id``)."""
        parts = json.loads(item_id) if len(self.table.key_attributes) > 1 else [item_id]
        key: dict[str, Any] = {}
        for name, kind, text in zip(self.table.key_attributes, self.table.key_types, parts, strict=True):
            key[name] = {"B": bytes.fromhex(text)} if kind == "B" else {kind: text}
        return key

    def get(self, item_ids: Iterable[str]) -> dict[str, dict[str, Any]]:
        """Consistent reads of ``item_ids``: decoded items by id (absent ids are gone from the table)."""
        ids = list(dict.fromkeys(item_ids))
        keys = [self.key_of(item_id) for item_id in ids]
        id_by_key = {
            json.dumps(item_key, sort_keys=True, default=str): item_id
            for item_key, item_id in zip(keys, ids, strict=True)
        }
        found: dict[str, dict[str, Any]] = {}

        def on_item(raw: dict[str, Any]) -> None:
            item_key = {name: raw[name] for name in self.table.key_attributes}
            found[id_by_key[json.dumps(item_key, sort_keys=True, default=str)]] = decode_image(raw)

        batch_get_consistent(
            self.client.batch_get_item,
            self.table.name,
            keys,
            on_item,
            Deadline.never(),
            f"BatchGetItem on {self.table.name}",
        )
        return found


def decoded(page: Page) -> list[dict[str, Any]]:
    """A page's items as projections see them; an item that cannot be decoded is skipped."""
    items = []
    for raw in page.items:
        try:
            items.append(decode_image(raw))
        except DecodeError:
            continue
    return items
