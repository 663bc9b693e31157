"""Carry contribution-record tombstones from the generation serving reads into a rebuild's generation.

A scan never sees a deleted item, so a new generation would hold no tombstone record for it. While the
old generation is still written, the writer folds the new one from the old one's tombstone; but the
next rebuild retires the old generation, and then a late INSERT or MODIFY of the deleted item would be
counted again. So a rebuild copies every tombstone record of the read generation into the new one when
it begins and again just before it swaps, each with ``attribute_not_exists``: a record the stream or
the scan already wrote there (folded against that tombstone) is never replaced. A tombstone adds
nothing to any group, so no group row changes.
"""

from __future__ import annotations

import logging
import uuid
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from projector.retry.deadline import Deadline
from projector.retry.policy import retrying
from projector.retry.transient import error_code, is_transient
from projector.sinks.aggregates.calls import Calls
from projector.sinks.aggregates.keys import generation_sk, item_pk
from projector.sinks.aggregates.records import decode_record, encode_record

if TYPE_CHECKING:
    from projector.projection.base import AggregateProjection

logger = logging.getLogger(__name__)


def carry_tombstones(
    client: Any, table: str, projection: AggregateProjection, source: int, target: int
) -> tuple[int, int]:
    """Copy ``source``'s tombstone records of ``projection`` into generation ``target``; (copied, present)."""
    if source == target:
        return 0, 0
    calls = Calls(client, Deadline.after(600))
    copied = present = 0
    for raw in _tombstones(calls, table, projection, source):
        record = decode_record(raw)
        item = encode_record(projection.name, raw["item_id"]["S"], target, record.state, {}, uuid.uuid4().hex)
        try:
            for attempt in retrying(calls.deadline, is_transient, what=f"{projection.name} tombstone copy"):
                with attempt:
                    calls(
                        "put_item", TableName=table, Item=item, ConditionExpression="attribute_not_exists(pk)"
                    )
            copied += 1
        except ClientError as error:
            if error_code(error) != "ConditionalCheckFailedException":
                raise
            present += 1
    logger.info(
        "%s: carried %d tombstone record(s) from g%d into g%d (%d already there)",
        projection.name,
        copied,
        source,
        target,
        present,
    )
    return copied, present


def _tombstones(calls: Calls, table: str, projection: AggregateProjection, generation: int) -> Any:
    """Every tombstone record of ``projection`` in ``generation`` (a consistent Scan of the table)."""
    request: dict[str, Any] = {
        "TableName": table,
        "ConsistentRead": True,
        "FilterExpression": "begins_with(pk, :prefix) AND sk = :generation AND deleted = :deleted",
        "ExpressionAttributeValues": {
            ":prefix": {"S": item_pk(projection.name, "")},
            ":generation": {"S": generation_sk(generation)},
            ":deleted": {"BOOL": True},
        },
    }
    while True:
        for attempt in retrying(calls.deadline, is_transient, what=f"{projection.name} tombstone scan"):
            with attempt:
                page = calls("scan", **request)
        yield from page.get("Items", [])
        if "LastEvaluatedKey" not in page:
            return
        request["ExclusiveStartKey"] = page["LastEvaluatedKey"]
