"""A rollback journal for moto's TransactWriteItems, replacing its whole-table deep copies.

moto (5.2.x) deep-copies every table a transaction names before each action so it can roll back
on cancel: a 100-action transaction on a 10,000-item table takes ~19 s, and putting the copy back
replaces the Table object under any concurrent writer. This patch keeps, per transaction, only the
items it touches (a deep copy of each, or "absent") and the length of each touched table's stream
shard; on cancel it puts those items back and truncates the stream records the transaction
appended. Cost is O(actions), whatever the table size. The rest of the logic mirrors moto's own
method line for line (condition checks, error codes, cancellation reasons).

It relies on requests being serialised (the launcher's lock): nothing else runs mid-transaction.
"""

from __future__ import annotations

import copy
import logging
from typing import Any

import moto
from moto.dynamodb.comparisons import get_filter_expression
from moto.dynamodb.exceptions import (
    ConditionalCheckFailed,
    MockValidationException,
    MultipleTransactionsException,
    TooManyTransactionsException,
    TransactionCanceledException,
    TransactWriteSingleOpException,
)
from moto.dynamodb.models import DynamoDBBackend
from moto.dynamodb.models.dynamo_type import DynamoType, Item
from moto.dynamodb.models.table import StreamShard, Table

logger = logging.getLogger(__name__)

_ORIGINAL = DynamoDBBackend.transact_write_items
_MARK = "_devservers_journal"


class TransactionJournal:
    """The before-images of the items one transaction touched, and its tables' stream lengths."""

    def __init__(self) -> None:
        self._items: dict[tuple[int, DynamoType, DynamoType | None], tuple[Table, Item | None]] = {}
        self._streams: dict[int, tuple[StreamShard, int]] = {}

    def touch(self, table: Table, hash_key: DynamoType, range_key: DynamoType | None) -> None:
        """Remember the item at this key (and the table's stream length) before its first change."""
        if id(table) not in self._streams and table.stream_shard is not None:
            self._streams[id(table)] = (table.stream_shard, len(table.stream_shard.items))
        slot = (id(table), hash_key, range_key)
        if slot not in self._items:
            before = table.get_item(hash_key, range_key)
            self._items[slot] = (table, copy.deepcopy(before))

    def rollback(self) -> None:
        """Put every touched item back as it was and drop the stream records appended since."""
        for (_, hash_key, range_key), (table, before) in reversed(self._items.items()):
            if range_key is not None:
                bucket = table.items[hash_key]
                if before is None:
                    bucket.pop(range_key, None)
                    if not bucket:
                        table.items.pop(hash_key, None)
                else:
                    bucket[range_key] = before
            elif before is None:
                table.items.pop(hash_key, None)
            else:
                table.items[hash_key] = before
        for shard, length in self._streams.values():
            del shard.items[length:]


def journaled_transact_write_items(self: DynamoDBBackend, transact_items: list[dict[str, Any]]) -> None:
    """moto's `DynamoDBBackend.transact_write_items`, rolled back by a journal instead of table copies."""
    if len(transact_items) > 100:
        raise TooManyTransactionsException()
    journal = TransactionJournal()
    target_items: set[tuple[str, str]] = set()

    def check_unicity(table_name: str, key: dict[str, Any]) -> None:
        item = (str(table_name), str(dict(sorted(key.items()))))
        if item in target_items:
            raise MultipleTransactionsException()
        target_items.add(item)

    errors: list[tuple[str, str, dict[str, Any]] | tuple[None, None, None]] = []
    for item in transact_items:
        original_item: dict[str, Any] | None = None
        if len(list(item.keys())) > 1:
            journal.rollback()  # moto leaves earlier actions applied here; we do not
            raise TransactWriteSingleOpException
        try:
            op_type, op = next(iter(item.items()))
            if op_type not in {"ConditionCheck", "Put", "Delete", "Update"}:
                raise ValueError("Unsupported transaction operation")

            table_name = op["TableName"]
            condition_expression = op.get("ConditionExpression")
            expression_attribute_names = op.get("ExpressionAttributeNames")
            expression_attribute_values = op.get("ExpressionAttributeValues")
            return_values_on_condition_check_failure = op.get("ReturnValuesOnConditionCheckFailure")

            if op_type == "Put":
                attrs = op["Item"]
                table = self.get_table(table_name)
                key = {table.hash_key_attr: attrs[table.hash_key_attr]}
                if table.range_key_attr is not None:
                    key[table.range_key_attr] = attrs[table.range_key_attr]
            else:
                key = op["Key"]

            check_unicity(table_name, key)

            # moto: current = self.get_item(table_name, key), plus the journal entry.
            table = self.get_table(table_name)
            hash_key, range_key = self.get_keys_value(table, key)
            if op_type != "ConditionCheck":
                journal.touch(table, hash_key, range_key)
            current = table.get_item(hash_key, range_key)

            if condition_expression is not None:
                condition_op = get_filter_expression(
                    condition_expression, expression_attribute_names, expression_attribute_values
                )
                if not condition_op.expr(current):
                    if return_values_on_condition_check_failure == "ALL_OLD" and current:
                        original_item = current.to_json()["Attributes"]
                    raise ConditionalCheckFailed(item=original_item)

            if op_type == "Put":
                self.put_item(
                    table_name,
                    op["Item"],
                    condition_expression=condition_expression,
                    expression_attribute_names=expression_attribute_names,
                    expression_attribute_values=expression_attribute_values,
                )
            elif op_type == "Delete":
                self.delete_item(
                    table_name,
                    key,
                    condition_expression=condition_expression,
                    expression_attribute_names=expression_attribute_names,
                    expression_attribute_values=expression_attribute_values,
                )
            elif op_type == "Update":
                self.update_item(
                    table_name,
                    key,
                    update_expression=op["UpdateExpression"],
                    condition_expression=condition_expression,
                    expression_attribute_names=expression_attribute_names,
                    expression_attribute_values=expression_attribute_values,
                )
            errors.append((None, None, None))
        except (MultipleTransactionsException, MockValidationException):
            journal.rollback()
            raise
        except ConditionalCheckFailed as error:
            errors.append(("ConditionalCheckFailed", str(error.message), original_item))  # type: ignore[arg-type]
        except Exception as error:
            errors.append((type(error).__name__, str(error), original_item))  # type: ignore[arg-type]

    if any(code is not None for code, _, _ in errors):
        journal.rollback()
        raise TransactionCanceledException(errors)


def install() -> None:
    """Patch moto's DynamoDB backend class (idempotent); survives `POST /moto-api/reset`."""
    if getattr(DynamoDBBackend.transact_write_items, _MARK, False):
        return
    if not moto.__version__.startswith("5."):
        logger.warning(
            "moto %s: the transaction journal mirrors moto 5.2.x; check it still fits", moto.__version__
        )
    setattr(journaled_transact_write_items, _MARK, True)
    DynamoDBBackend.transact_write_items = journaled_transact_write_items  # type: ignore[method-assign]
    logger.info("moto %s: TransactWriteItems now rolls back through a per-item journal", moto.__version__)


def uninstall() -> None:
    """Put moto's own method back (for comparisons in benchmarks)."""
    DynamoDBBackend.transact_write_items = _ORIGINAL  # type: ignore[method-assign]
