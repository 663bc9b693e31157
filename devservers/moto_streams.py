"""One stream record per UpdateItem that creates an item, as DynamoDB sends.

moto (5.2.x) creates the missing item with a keys-only `put_item` (stream record INSERT with only
the keys) and then records the update as a second INSERT. DynamoDB emits a single INSERT with the
full new image; a keys-only INSERT would reach projections as an item missing every attribute.
This patch drops that first record and gives its sequence number to the real one. Installed by
the launcher; relies on requests being serialised.
"""

from __future__ import annotations

import logging
from typing import Any

from moto.dynamodb.models import DynamoDBBackend

logger = logging.getLogger(__name__)

_ORIGINAL = DynamoDBBackend.update_item
_MARK = "_devservers_single_insert"


def single_insert_update_item(
    self: DynamoDBBackend, table_name: str, key: Any, *args: Any, **kwargs: Any
) -> Any:
    """moto's `update_item`, minus the keys-only INSERT it records when the item did not exist."""
    try:
        table = self.get_table(table_name)
    except Exception:  # let moto raise its own error
        return _ORIGINAL(self, table_name, key, *args, **kwargs)
    shard = table.stream_shard
    before = len(shard.items) if shard is not None else 0
    item = _ORIGINAL(self, table_name, key, *args, **kwargs)
    if shard is not None and table.stream_shard is shard and len(shard.items) == before + 2:
        first, second = shard.items[before].record, shard.items[before + 1].record
        if first["eventName"] == "INSERT" and second["eventName"] == "INSERT":
            second["dynamodb"]["SequenceNumber"] = first["dynamodb"]["SequenceNumber"]
            del shard.items[before]
    return item


def install() -> None:
    """Patch moto's DynamoDB backend class (idempotent)."""
    if getattr(DynamoDBBackend.update_item, _MARK, False):
        return
    setattr(single_insert_update_item, _MARK, True)
    DynamoDBBackend.update_item = single_insert_update_item  # type: ignore[method-assign]
    logger.info("moto: UpdateItem that creates an item now records a single INSERT")


def installed() -> bool:
    """True once `install` has run in this process."""
    return bool(getattr(DynamoDBBackend.update_item, _MARK, False))
