"""Exact aggregates: per-item contribution records and group rows that commit together.

Why it stays exact: each item's record holds what the item currently adds to each group, and the
change to a group is always ``new contributions - stored contributions``, written in the same
transaction as the record (conditioned on the record's token as read). A retry, duplicate or late
change is either stale against the stored version (no write) or re-folded from what is stored, so no
delta is ever applied twice or lost. See ``table.py`` for the table layout, ``actions.py`` for what a
transaction sends and ``packing.py`` for how items are grouped into transactions (one ``ADD`` per
touched group per batch when its items fit).
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass, replace
from functools import partial
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from projector.changes.batch import ItemChanges
from projector.config.exceptions import ConfigurationError
from projector.projection.base import AggregateProjection
from projector.projection.rendering import Rejected
from projector.retry.batch_get import BATCH_GET_KEYS
from projector.retry.policy import DEFAULT_POLICY, DeadlineExceeded, RetryPolicy, retrying
from projector.retry.transient import TRANSIENT_REASONS, error_code, is_transient
from projector.sinks.aggregates.actions import (
    REFUSED_ACTION,
    REFUSED_REQUEST,
    Refused,
    group_limit_refusal,
    transaction_actions,
)
from projector.sinks.aggregates.calls import MAX_TRANSACTION_ACTIONS, Calls
from projector.sinks.aggregates.contributions import Contributions, diff
from projector.sinks.aggregates.errors import describe_error
from projector.sinks.aggregates.keys import RESERVED_ATTRIBUTES, generation_sk, item_pk, key
from projector.sinks.aggregates.numbers import NumberOutOfRange
from projector.sinks.aggregates.packing import pack
from projector.sinks.aggregates.plans import AggregateResult, GenerationWrite, ItemPlan
from projector.sinks.aggregates.records import decode_record
from projector.sinks.aggregates.table import Meta, read_meta, write_meta
from projector.versioning import ItemState, fold_write, scheme_for

if TYPE_CHECKING:
    from projector.changes.types import Change
    from projector.config.settings import Settings
    from projector.retry.deadline import Deadline
    from projector.sinks.aggregates.records import StoredRecord

logger = logging.getLogger(__name__)

_IO_ERRORS = (ClientError, BotoCoreError, DeadlineExceeded)


class _Unprocessed(Exception):
    """BatchGetItem left keys unprocessed: back off and ask again."""


class _Cancelled(Exception):
    """A transaction was cancelled; ``item_ids`` failed their token condition and must be re-read."""

    def __init__(self, item_ids: set[str], codes: list[str]) -> None:
        super().__init__(f"TransactionCanceledException: {', '.join(sorted(set(codes))) or 'no reasons'}")
        self.item_ids = item_ids


class _Unfinished(Exception):
    """Some items of a transaction group are not written yet; ``cause`` is the last error seen."""

    def __init__(self, cause: BaseException | None) -> None:
        super().__init__(describe_error(cause) if cause else "not written")
        self.cause = cause


@dataclass(frozen=True, slots=True)
class _RecordWrite:
    """What a generation's fold writes: the record and its deltas, or one step of emptying an oversized one."""

    write: GenerationWrite
    partial: bool = False


def _retryable(error: BaseException) -> bool:
    return isinstance(error, _Unprocessed | _Cancelled | _Unfinished) or is_transient(error)


class AggregateSink:
    """Applies item changes to an aggregate projection's records and group rows, exactly."""

    def __init__(
        self,
        client: Any,
        settings: Settings,
        policy: RetryPolicy = DEFAULT_POLICY,
        max_actions: int = MAX_TRANSACTION_ACTIONS,
    ) -> None:
        self._client = client
        self._settings = settings
        self.table_name = settings.aggregates_table
        self.policy = policy
        self.max_actions = max_actions

    def apply(
        self, projection: AggregateProjection, items: Sequence[ItemChanges], deadline: Deadline
    ) -> AggregateResult:
        clash = RESERVED_ATTRIBUTES & projection.measures.keys()
        if clash:
            raise ConfigurationError(
                f"{projection.name}: measure names {sorted(clash)} are reserved key attributes"
            )
        result = AggregateResult()
        call = _ApplyCall(self, projection, Calls(self._client, deadline), result)
        try:
            call.run(_merge(items))
        finally:
            result.requests = call.calls.count
        logger.debug(
            "%s: %d items, %d applied, %d stale, %d failed, %d poison, %d transactions, %d requests",
            projection.name,
            len(items),
            result.applied,
            result.stale,
            len(result.failed),
            len(result.poison),
            result.transactions,
            result.requests,
        )
        return result


class _ApplyCall:
    """One ``apply`` call: meta read once, records read, folded, packed and committed."""

    def __init__(
        self, sink: AggregateSink, projection: AggregateProjection, calls: Calls, result: AggregateResult
    ) -> None:
        self.sink = sink
        self.projection = projection
        self.calls = calls
        self.result = result
        self.table = sink.table_name
        self.scheme = scheme_for(projection.version)
        self.meta = Meta()
        self.refused: dict[str, list[tuple[Change, str]]] = {}  # changes DynamoDB refused, per item

    def run(self, items: list[ItemChanges]) -> None:
        if not items:
            return
        try:
            self.meta = self._read_meta()
        except _IO_ERRORS as error:
            self._fail(items, error)
            return
        plans: list[ItemPlan] = []
        per_call = max(1, BATCH_GET_KEYS // len(self.meta.write_generations))
        for start in range(0, len(items), per_call):
            chunk = items[start : start + per_call]
            try:
                found = self._read_records(chunk, retry=True)
            except (*_IO_ERRORS, _Unprocessed) as error:
                self._fail(chunk, error)
                continue
            plans.extend(self._plan(item, found) for item in chunk)
        writing = [plan for plan in plans if self._needs_write(plan)]
        for piece in pack([plan.unit for plan in writing], self.sink.max_actions):
            self._commit([unit.payload for unit in piece])

    def _read_meta(self) -> Meta:
        meta = read_meta(self.calls, self.table, self.projection)
        if meta.exists:
            return meta
        first = Meta(definition_hash=self.projection.definition_hash())
        if write_meta(self.calls, self.table, self.projection, meta, first):
            return replace(first, version=1)
        return read_meta(self.calls, self.table, self.projection)  # written by someone else meanwhile

    def _read_records(self, items: Sequence[ItemChanges], retry: bool) -> dict[tuple[str, str], StoredRecord]:
        """Consistent BatchGetItem of every write generation's record of ``items`` (at most 100 keys)."""
        pending = [
            key(item_pk(self.projection.name, item.item_id), generation_sk(generation))
            for item in items
            for generation in self.meta.write_generations
        ]
        found: dict[tuple[str, str], StoredRecord] = {}

        def once() -> None:
            nonlocal pending
            response = self.calls(
                "batch_get_item", RequestItems={self.table: {"Keys": pending, "ConsistentRead": True}}
            )
            for raw in response.get("Responses", {}).get(self.table, []):
                found[(raw["pk"]["S"], raw["sk"]["S"])] = decode_record(raw)
            pending = response.get("UnprocessedKeys", {}).get(self.table, {}).get("Keys", [])
            if pending:
                raise _Unprocessed(f"{len(pending)} keys unprocessed")

        if not retry:
            once()
            return found
        for attempt in retrying(self.calls.deadline, _retryable, self.sink.policy, what="BatchGetItem"):
            with attempt:
                once()
        return found

    def _plan(self, item: ItemChanges, found: dict[tuple[str, str], StoredRecord]) -> ItemPlan:
        """Fold the item's changes onto each write generation's record; the deltas follow.

        Each generation folds on its own: a change whose record that generation cannot hold is rejected
        there (poison) and the generation keeps the last state it can hold. Changes DynamoDB refused on
        an earlier attempt are left out (and stay poison).
        """
        name = self.projection.name
        stored = {
            g: found.get((item_pk(name, item.item_id), generation_sk(g))) for g in self.meta.write_generations
        }
        # A generation being rebuilt starts from another generation's tombstone: a tombstone contributes
        # nothing in any generation, and it keeps a late change of a deleted item from reviving it there.
        tombstone = next((r.state for r in stored.values() if r is not None and r.state.deleted), None)
        refused = self.refused.get(item.item_id, [])
        changes = [c for c in item.changes if all(c is not r for r, _ in refused)]
        plan = ItemPlan(item)
        seen: set[int] = set()
        behind_a_write: Change | None = None
        for generation, record in stored.items():
            base = record.state if record is not None else tombstone
            write = partial(self._record_write, item.item_id, generation, record)
            folded = fold_write(self.scheme, base, changes, write, self.projection.keep_expired)
            if generation == self.meta.read_generation:
                plan.applied, plan.stale, plan.last = len(folded.applied), len(folded.stale), folded.last
            for change, reason in folded.poison:
                if id(change) not in seen:
                    seen.add(id(change))
                    plan.poison.append((change, reason))
            if folded.output is not None:
                plan.writes.append(folded.output.write)
                plan.partial = plan.partial or folded.output.partial
                behind_a_write = behind_a_write or folded.last
        plan.last = plan.last or behind_a_write
        plan.poison.extend(entry for entry in refused if id(entry[0]) not in seen)
        return plan

    def _record_write(
        self, item_id: str, generation: int, record: StoredRecord | None, state: ItemState, change: Change
    ) -> _RecordWrite | Rejected:
        """The record ``state`` leaves in ``generation`` and its group deltas, or why it cannot be stored."""
        name = self.projection.name
        before = record.contributions if record is not None else {}
        after: Contributions = {}
        if not state.deleted:
            if change.image is None:
                raise ValueError(f"{change.kind} without a new image: the stream must carry new images")
            after = self.projection.contributions(change.image) or {}
        refusal = group_limit_refusal(name, self.sink.max_actions, before, after)
        if refusal is not None and not after and record is not None and self.sink.max_actions > 1:
            # A record stored past the limit by earlier code: empty it in steps (its version kept,
            # so the removal stays newer), then write the tombstone. Rows equal records at each step.
            part = {group: before[group] for group in sorted(before)[self.sink.max_actions - 1 :]}
            step = GenerationWrite(generation, record.token, record.state, part, diff(part, before))
            return _RecordWrite(step, partial=True)
        if refusal is None:
            try:
                deltas = diff(after, before)
            except NumberOutOfRange as error:
                refusal = f"{name}: {error}"
        if refusal is not None:
            logger.warning("%s: item %s refused: %s", name, _digest(item_id), refusal)
            return Rejected(refusal)
        token = record.token if record is not None else None
        return _RecordWrite(GenerationWrite(generation, token, state, after, deltas))

    def _without(self, plan: ItemPlan, reason: str) -> ItemPlan:
        """The item planned again, from its records read again, without the change behind the write
        DynamoDB refused: that change is poison, the item keeps the last state it can hold."""
        change = plan.last or plan.item.changes[-1]
        logger.warning("%s: item %s refused: %s", self.projection.name, _digest(plan.item.item_id), reason)
        refused = self.refused.setdefault(plan.item.item_id, [])
        if all(change is not earlier for earlier, _ in refused):
            refused.append((change, reason))
        return self._plan(plan.item, self._read_records([plan.item], retry=False))

    def _needs_write(self, plan: ItemPlan) -> bool:
        """False for a plan settled without a write: nothing newer, or refused (poison)."""
        if not plan.writes:
            self._done(plan)
            return False
        return True

    def _commit(self, plans: list[ItemPlan]) -> None:
        """Write one packed transaction, re-reading and re-folding items whose token moved, with retries.

        A transaction DynamoDB refuses for what it holds (``Refused``) is split: each item is sent on its
        own, and an item refused alone is poison. One bad item never fails the others packed with it.
        """
        pending = {plan.item.item_id: plan for plan in plans}
        alone: set[str] = set()
        reread: set[str] = set()
        last_error: BaseException | None = None

        def keep_if_writing(plan: ItemPlan) -> bool:
            """A re-made plan replaces its item's in ``pending`` while it still writes; else the item,
            settled, leaves ``pending``. Whether it still writes."""
            if self._needs_write(plan):
                pending[plan.item.item_id] = plan
                return True
            del pending[plan.item.item_id]
            return False

        def attempt_once() -> None:
            nonlocal last_error
            stale_ids = sorted(reread & pending.keys())
            if stale_ids:
                found = self._read_records([pending[i].item for i in stale_ids], retry=False)
                reread.difference_update(stale_ids)
                for item_id in stale_ids:
                    keep_if_writing(self._plan(pending[item_id].item, found))
            packed = [p for i, p in pending.items() if i not in alone]
            queue = [
                [unit.payload for unit in piece]
                for piece in pack([p.unit for p in packed], self.sink.max_actions)
            ]
            queue += [[pending[i]] for i in sorted(alone & pending.keys())]
            while queue:
                chunk = queue.pop(0)
                try:
                    self._send(chunk)
                except _Cancelled as cancelled:
                    reread.update(cancelled.item_ids)
                    last_error = cancelled
                    continue
                except Refused as refused:
                    if len(chunk) > 1:
                        logger.warning(
                            "%s: a transaction of %d items was refused (%s); sending each item alone",
                            self.projection.name,
                            len(chunk),
                            refused,
                        )
                        alone.update(plan.item.item_id for plan in chunk)
                        queue.extend([plan] for plan in chunk)
                        continue
                    plan = chunk[0]
                    reason = f"{self.projection.name}: DynamoDB refused the item's write: {refused}"
                    again = self._without(plan, reason)
                    if keep_if_writing(again):
                        queue.append([again])
                    continue
                except ClientError as error:
                    if is_transient(error):
                        last_error = error
                        continue
                    logger.error("%s: transaction refused: %s", self.projection.name, describe_error(error))
                    for plan in chunk:
                        self.result.failed[plan.item.item_id] = describe_error(error)
                        del pending[plan.item.item_id]
                    continue
                except BotoCoreError as error:
                    if not is_transient(error):
                        raise
                    last_error = error
                    continue
                for plan in chunk:
                    if plan.partial:  # one step of emptying an oversized record: read it again, go on
                        self.result.record_writes += len(plan.writes) + plan.committed
                        found = self._read_records([plan.item], retry=False)
                        again = self._plan(plan.item, found)
                        if keep_if_writing(again):
                            queue.append([again])
                        continue
                    self._done(plan)
                    del pending[plan.item.item_id]
            if pending:
                raise _Unfinished(last_error)

        try:
            for attempt in retrying(
                self.calls.deadline,
                _retryable,
                self.sink.policy,
                what=f"{self.projection.name} TransactWriteItems",
            ):
                with attempt:
                    attempt_once()
        except (*_IO_ERRORS, _Unfinished, _Unprocessed, _Cancelled) as error:
            cause = error.cause if isinstance(error, _Unfinished) and error.cause else error
            self._fail([plan.item for plan in pending.values()], cause)

    def _send(self, chunk: list[ItemPlan]) -> None:
        """One transaction, or for an item whose generations do not fit one, one per generation.

        Generations are independent (each has its own records and group rows), so an item written in
        two generations during a rebuild may commit them one after the other: each stays exact, and a
        generation already written is stale on a retry.
        """
        if len(chunk) > 1 or chunk[0].unit.cost <= self.sink.max_actions:
            self._transact(chunk)
            return
        plan = chunk[0]
        while plan.writes:
            self._transact([ItemPlan(plan.item, writes=[plan.writes[0]])])
            plan.writes.pop(0)
            plan.committed += 1

    def _transact(self, plans: list[ItemPlan]) -> None:
        actions, owners, labels = transaction_actions(self.table, self.projection.name, plans)
        self.result.transactions += 1
        self.result.group_writes.update(labels)
        try:
            self.calls("transact_write_items", TransactItems=actions)
        except ClientError as error:
            code = error_code(error)
            if code in REFUSED_REQUEST:
                raise Refused(describe_error(error)) from error
            if code != "TransactionCanceledException":
                raise
            codes = [reason.get("Code") or "None" for reason in error.response.get("CancellationReasons", [])]
            if any(code in REFUSED_ACTION for code in codes):
                raise Refused(", ".join(sorted(set(codes)))) from error
            if any(code not in TRANSIENT_REASONS and code != "ConditionalCheckFailed" for code in codes):
                raise
            moved = {
                owner
                for owner, code in zip(owners, codes, strict=False)
                if code == "ConditionalCheckFailed" and owner is not None
            }
            if not codes:  # no reasons given: trust nothing that was read
                moved = {plan.item.item_id for plan in plans}
            raise _Cancelled(moved, codes) from error

    def _done(self, plan: ItemPlan) -> None:
        self.result.applied += plan.applied
        self.result.stale += plan.stale
        self.result.poison.extend(plan.poison)
        self.result.record_writes += len(plan.writes) + plan.committed

    def _fail(self, items: Sequence[ItemChanges], error: BaseException) -> None:
        reason = describe_error(error)
        logger.warning("%s: %d items not applied: %s", self.projection.name, len(items), reason)
        for item in items:
            self.result.failed[item.item_id] = reason


def _digest(item_id: str) -> str:
    """An item id fit for a log line: a hash, never the key's value."""
    return hashlib.sha256(item_id.encode("utf-8", "surrogatepass")).hexdigest()[:12]


def _merge(items: Sequence[ItemChanges]) -> list[ItemChanges]:
    """One entry per item (a caller passing an item twice gets its changes folded together, in order)."""
    merged: dict[str, ItemChanges] = {}
    for item in items:
        if item.item_id in merged:
            changes = merged[item.item_id].changes + item.changes
            merged[item.item_id] = ItemChanges(item.item_id, sorted(changes, key=lambda c: c.batch_index))
        else:
            merged[item.item_id] = item
    return list(merged.values())
