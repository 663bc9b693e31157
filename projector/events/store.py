"""Append to and read event streams in a DynamoDB events table, with optimistic version checks.

``append(stream_id, events, expected_version)`` writes versions ``expected+1 .. expected+n`` in one
``TransactWriteItems``: each Put is conditioned on its (stream, version) item not existing, and the
stream is checked to have reached ``expected_version`` (a ConditionCheck on that item; for a full
100-event call, which leaves no room for it, a consistent GetItem first: streams only grow, so what it
saw stays true). Two writers racing on one stream therefore cannot both succeed: the loser gets a
``ConcurrencyError`` naming the version the stream actually has. Each call carries a
``ClientRequestToken``, so a retry after a lost answer is idempotent instead of a false conflict.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, cast

from boto3.dynamodb.types import TypeSerializer
from botocore.exceptions import ClientError

from projector.events.layout import EventLayout, projector_preset
from projector.events.types import RecordedEvent, recorded_event
from projector.exceptions import ProjectorError
from projector.records import decode_image
from projector.retry import Deadline, RetryPolicy, retrying
from projector.retry.transient import error_code, is_transient
from projector.source.tables import create_streamed_table

logger = logging.getLogger(__name__)

MAX_EVENTS_PER_APPEND = 100
TRANSACTION_ACTIONS = 100
STORE_POLICY = RetryPolicy(max_attempts=8, initial_wait_s=0.02, max_wait_s=1.0, jitter_s=0.05)
_serializer = TypeSerializer()


class ConcurrencyError(ProjectorError):
    """The stream is not at the expected version (another writer appended first)."""

    def __init__(self, stream_id: str, expected: int, actual: int) -> None:
        super().__init__(f"stream {stream_id} is at version {actual}, not the expected {expected}")
        self.stream_id = stream_id
        self.expected = expected
        self.actual = actual


class AppendError(ProjectorError, ValueError):
    """An append that can never succeed as asked (too many events, a payload DynamoDB cannot hold)."""


@dataclass(frozen=True, slots=True)
class NewEvent:
    """An event to append: its type name and payload (numbers as Decimal or int, never float)."""

    type: str
    data: Mapping[str, Any] = field(default_factory=dict)


class _Conflict(Exception):
    """The transaction met another one in flight on the same item: try again."""


class EventStore:
    """Reads and appends the streams of one events table."""

    def __init__(
        self,
        client: Any,
        table: str,
        layout: EventLayout | None = None,
        policy: RetryPolicy = STORE_POLICY,
    ) -> None:
        self.client = client
        self.table = table
        self.layout = layout or projector_preset()
        self.policy = policy

    # appending --------------------------------------------------------------------------------------
    def append(
        self,
        stream_id: str,
        events: Sequence[NewEvent | tuple[str, Mapping[str, Any]]],
        expected_version: int,
        deadline: Deadline | None = None,
    ) -> int:
        """Append ``events`` after ``expected_version`` atomically; the stream's new version."""
        news = [event if isinstance(event, NewEvent) else NewEvent(*event) for event in events]
        if not news:
            raise AppendError("nothing to append")
        if len(news) > MAX_EVENTS_PER_APPEND:
            raise AppendError(
                f"{len(news)} events in one append; at most {MAX_EVENTS_PER_APPEND} fit one transaction "
                "(append them in several calls, each with the version the previous one returned)"
            )
        if expected_version < 0:
            raise AppendError(f"expected_version must be 0 or more, got {expected_version}")
        now = time.time()
        actions: list[dict[str, Any]] = [
            {
                "Put": {
                    "TableName": self.table,
                    "Item": self._item(stream_id, expected_version + offset, event, now),
                    "ConditionExpression": "attribute_not_exists(#s)",
                    "ExpressionAttributeNames": {"#s": self.layout.stream_attribute},
                }
            }
            for offset, event in enumerate(news, start=1)
        ]
        precheck = False
        if expected_version > 0:
            if len(actions) < TRANSACTION_ACTIONS:
                actions.append(
                    {
                        "ConditionCheck": {
                            "TableName": self.table,
                            "Key": self._key(stream_id, expected_version),
                            "ConditionExpression": "attribute_exists(#s)",
                            "ExpressionAttributeNames": {"#s": self.layout.stream_attribute},
                        }
                    }
                )
            else:
                precheck = True
        deadline = deadline or Deadline.after(30)
        if precheck and not self._exists(stream_id, expected_version, deadline):
            raise ConcurrencyError(stream_id, expected_version, self.version(stream_id))
        token = uuid.uuid4().hex

        def attempt() -> None:
            try:
                self.client.transact_write_items(TransactItems=actions, ClientRequestToken=token)
            except ClientError as error:
                if error_code(error) != "TransactionCanceledException":
                    raise
                reasons = [r.get("Code") or "None" for r in error.response.get("CancellationReasons", [])]
                if "ConditionalCheckFailed" in reasons:
                    raise ConcurrencyError(stream_id, expected_version, self.version(stream_id)) from None
                if all(code in ("None", "TransactionConflict") for code in reasons):
                    raise _Conflict(", ".join(reasons)) from None
                raise

        retrying(
            deadline,
            lambda e: isinstance(e, _Conflict) or is_transient(e),
            self.policy,
            f"append to {stream_id}",
        )(attempt)
        return expected_version + len(news)

    def _item(self, stream_id: str, version: int, event: NewEvent, now: float) -> dict[str, Any]:
        layout = self.layout
        if not event.type:
            raise AppendError("an event needs a type")
        item: dict[str, Any] = {
            layout.stream_attribute: {"S": stream_id},
            layout.version_attribute: {"N": str(version)},
            layout.type_attribute: {"S": event.type},
            layout.data_attribute: _payload(event.data, layout),
        }
        if layout.recorded_at_attribute:
            if layout.recorded_at_format == "epoch":
                item[layout.recorded_at_attribute] = {"N": str(int(now))}
            else:
                stamp = datetime.fromtimestamp(now, UTC).isoformat(timespec="milliseconds")
                item[layout.recorded_at_attribute] = {"S": stamp.replace("+00:00", "Z")}
        return item

    def _key(self, stream_id: str, version: int) -> dict[str, Any]:
        return {
            self.layout.stream_attribute: {"S": stream_id},
            self.layout.version_attribute: {"N": str(version)},
        }

    def _exists(self, stream_id: str, version: int, deadline: Deadline) -> bool:
        response = retrying(deadline, is_transient, self.policy, "GetItem")(
            lambda: self.client.get_item(
                TableName=self.table, Key=self._key(stream_id, version), ConsistentRead=True
            )
        )
        return "Item" in response

    # reading ----------------------------------------------------------------------------------------
    def version(self, stream_id: str) -> int:
        """The stream's current version (0 for a stream with no events), by a consistent read."""
        names, values = self._condition(stream_id, 0, None)
        response = retrying(Deadline.after(30), is_transient, self.policy, "Query")(
            lambda: self.client.query(
                TableName=self.table,
                KeyConditionExpression="#s = :s",
                ExpressionAttributeNames=names,
                ExpressionAttributeValues={":s": values[":s"]},
                ScanIndexForward=False,
                Limit=1,
                ConsistentRead=True,
                ProjectionExpression="#s, #v",
            )
        )
        items = response.get("Items", [])
        return int(items[0][self.layout.version_attribute]["N"]) if items else 0

    def items(
        self,
        stream_id: str,
        after: int = 0,
        up_to: int | None = None,
        deadline: Deadline | None = None,
        page_size: int | None = None,
    ) -> Iterator[dict[str, Any]]:
        """The stream's items with ``after < version <= up_to``, decoded, in version order (paged)."""
        names, values = self._condition(stream_id, after, up_to)
        condition = "#s = :s AND #v BETWEEN :lo AND :hi" if up_to is not None else "#s = :s AND #v > :lo"
        request: dict[str, Any] = {
            "TableName": self.table,
            "KeyConditionExpression": condition,
            "ExpressionAttributeNames": names,
            "ExpressionAttributeValues": values,
            "ConsistentRead": True,
        }
        if page_size:
            request["Limit"] = page_size
        deadline = deadline or Deadline.after(60)
        while True:
            response = retrying(deadline, is_transient, self.policy, f"Query of {stream_id}")(
                lambda request=request: self.client.query(**request)
            )
            for raw in response.get("Items", []):
                yield decode_image(raw)
            start = response.get("LastEvaluatedKey")
            if not start:
                return
            request = {**request, "ExclusiveStartKey": start}

    def read(
        self, stream_id: str, after: int = 0, up_to: int | None = None, page_size: int | None = None
    ) -> Iterator[RecordedEvent]:
        """The stream's events after version ``after`` (up to ``up_to``), in version order."""
        for item in self.items(stream_id, after, up_to, page_size=page_size):
            yield recorded_event(item, self.layout)

    def _condition(
        self, stream_id: str, after: int, up_to: int | None
    ) -> tuple[dict[str, str], dict[str, Any]]:
        names = {"#s": self.layout.stream_attribute, "#v": self.layout.version_attribute}
        values: dict[str, Any] = {":s": {"S": stream_id}, ":lo": {"N": str(after)}}
        if up_to is not None:
            values[":lo"] = {"N": str(after + 1)}
            values[":hi"] = {"N": str(up_to)}
        return names, values


def _payload(data: Mapping[str, Any], layout: EventLayout) -> dict[str, Any]:
    """The payload as the layout stores it: a map, a JSON string or JSON bytes."""
    if not isinstance(data, Mapping):
        raise AppendError(f"an event's data must be an object, got {type(data).__name__}")
    if layout.payload == "map":
        try:
            return cast("dict[str, Any]", _serializer.serialize(dict(data)))  # the stubs' TypedDict is a map
        except TypeError as error:
            raise AppendError(f"{layout.data_attribute}: {error} (use Decimal, not float)") from None
    from projector.sinks.opensearch.serializer import SerializationError, to_json

    try:
        text = json.dumps(to_json(dict(data)), separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    except (SerializationError, ValueError) as error:
        raise AppendError(f"{layout.data_attribute}: {error}") from None
    if layout.payload == "json_bytes":
        return {"B": text.encode()}
    return {"S": text}


def decimal_json(text: str) -> Any:
    """JSON with every non-integral number as Decimal (the CLI's ``--data``)."""
    return json.loads(text, parse_float=Decimal)


def create_events_table(client: Any, table: str, layout: EventLayout) -> bool:
    """An events table (stream id S, version N) with a NEW_AND_OLD_IMAGES stream; False if it exists."""
    return create_streamed_table(client, table, layout.table_definition())
