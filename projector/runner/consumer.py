"""One shard's loop: gather a batch, invoke, checkpoint what was applied, retry or dead-letter the rest.

It follows Lambda's event source mapping for streams: a batch is sent when it is full, when the
batching window has passed, or when the shard has nothing more right now; ``batchItemFailures``
resends from the lowest reported record; a raised error fails the whole batch, which is halved first
when bisecting; after ``max_retries`` failed retries the records still failing are stored whole as
dead letters and the shard moves on. Only applied (or dead-lettered) records are ever checkpointed.
"""

from __future__ import annotations

import json
import logging
import random
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from projector.deadletters import DeadLetterStore
from projector.pipeline.poison import DeadLetterRule
from projector.retry.transient import is_transient
from projector.runner.checkpoints import CheckpointStore
from projector.runner.control import RunControl
from projector.runner.invoker import Invoker, InvokeResult
from projector.runner.reader import MAX_RECORDS_PER_CALL, ReadResult, ShardReader
from projector.runner.reports import BatchReport, Outcome, lag_seconds

logger = logging.getLogger(__name__)

#: Lambda's synchronous invocation payload limit.
MAX_PAYLOAD_BYTES = 6 * 1024 * 1024


@dataclass(frozen=True)
class ConsumerOptions:
    """Lambda's event source mapping settings, as far as one shard's loop is concerned."""

    batch_size: int = 100
    window_s: float = 0.0
    bisect: bool = False
    max_retries: int = 10  # -1: retry until it succeeds (Lambda's default for streams)
    poll_interval_s: float = 0.25  # Lambda polls each shard about four times a second
    backoff_initial_s: float = 0.2
    backoff_max_s: float = 30.0
    max_payload_bytes: int = MAX_PAYLOAD_BYTES


@dataclass
class _Batch:
    records: list[dict[str, Any]]
    failed_attempts: int = 0
    named_failure: bool = False  # the last failure named the first record (batchItemFailures)
    last_error: str = ""


@dataclass
class _Buffered:
    record: dict[str, Any]
    size: int = field(default=0)


class ShardConsumer:
    """Reads one shard to its end (or until stopped), feeding the invoker in order."""

    def __init__(
        self,
        reader: ShardReader,
        invoker: Invoker,
        checkpoints: CheckpointStore,
        dead_letters: DeadLetterStore,
        control: RunControl,
        options: ConsumerOptions = ConsumerOptions(),
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.reader = reader
        self.invoker = invoker
        self.checkpoints = checkpoints
        self.dead_letters = dead_letters
        self._letters = DeadLetterRule(dead_letters)
        self.control = control
        self.options = options
        self.shard = reader.shard
        self._clock = clock
        self._buffer: deque[_Buffered] = deque()
        self._pending: deque[_Batch] = deque()
        self._failures_in_row = 0
        self.idle_since: float | None = None  # set while the shard holds nothing and the stream gives nothing

    # loop ------------------------------------------------------------------------------------------
    def run(self) -> bool:
        """Consume until the shard is finished (True) or the run stops (False)."""
        while not self.control.stopping:
            if not self._pending:
                batch = self._next_batch()
                if batch is None:
                    if self.reader.end_of_shard and not self._buffer:
                        self.checkpoints.finish(
                            self.reader.stream_arn, self.shard.shard_id, self.shard.parent_shard_id
                        )
                        logger.info("shard %s finished", self.shard.shard_id)
                        return True
                    continue
                self._pending.append(batch)
            self._attempt(self._pending[0])
        return False

    # gathering -------------------------------------------------------------------------------------
    def _next_batch(self) -> _Batch | None:
        """Read until a batch is full, the window has passed, or the shard has nothing more right now."""
        size = self.options.batch_size
        window_ends = self._clock() + self.options.window_s if self._buffer else None
        while not self.control.stopping:
            if len(self._buffer) >= size or (self._buffer and self.reader.end_of_shard):
                break
            if self.reader.end_of_shard:
                return None
            asked = min(size - len(self._buffer), MAX_RECORDS_PER_CALL)
            result = self._read(asked)
            if result is None:  # stopping during a backoff
                return None
            if result.records:
                self.idle_since = None
                self._buffer.extend(_Buffered(record, _size(record)) for record in result.records)
                window_ends = (
                    window_ends if window_ends is not None else self._clock() + self.options.window_s
                )
                if len(result.records) >= asked:
                    continue  # a full page: more is probably waiting
            elif not self._buffer and self.idle_since is None:
                self.idle_since = self._clock()
            if self._buffer and window_ends is not None and self._clock() >= window_ends:
                break
            if self.reader.end_of_shard:
                continue
            pause = self.options.poll_interval_s
            if window_ends is not None:
                pause = min(pause, max(0.0, window_ends - self._clock()))
            if self.control.wait(pause):
                return None
        if self.control.stopping or not self._buffer:
            return None
        return _Batch(self._take(size))

    def _take(self, size: int) -> list[dict[str, Any]]:
        records: list[dict[str, Any]] = []
        payload = 20  # {"Records": []}
        while self._buffer and len(records) < size:
            item = self._buffer[0]
            if records and payload + item.size + 1 > self.options.max_payload_bytes:
                break
            payload += item.size + 1
            records.append(self._buffer.popleft().record)
        return records

    def _read(self, limit: int) -> ReadResult | None:
        failures = 0
        while True:
            try:
                return self.reader.read(limit)
            except Exception as error:
                if not is_transient(error):
                    raise
                failures += 1
                delay = self._backoff(failures)
                logger.warning(
                    "shard %s: GetRecords failed (%s); retrying in %.1fs", self.shard.shard_id, error, delay
                )
                if self.control.wait(delay):
                    return None

    # invoking --------------------------------------------------------------------------------------
    def _attempt(self, batch: _Batch) -> None:
        if not self.control.take_batch():
            self.control.stop(self.control.stop_reason or "batch budget used")
            return
        started = self._clock()
        result = self.invoker.invoke(batch.records)
        duration_ms = (self._clock() - started) * 1000
        records = batch.records
        retry = False
        if result.ok:
            self._advance(records[-1])
            self._pending.popleft()
            self._failures_in_row = 0
            self._report("ok", records, batch, result, len(records), duration_ms)
        elif result.error is None:
            retry = self._partial(batch, result, duration_ms)
        else:
            retry = self._failed(batch, result, duration_ms)
        self.control.batch_done()
        if retry and not self.control.stopping:
            self._failures_in_row += 1
            self.control.wait(self._backoff(self._failures_in_row))

    def _partial(self, batch: _Batch, result: InvokeResult, duration_ms: float) -> bool:
        """Checkpoint the applied prefix; resend from the lowest reported record. True: back off first."""
        records, index = batch.records, result.failed_at or 0
        if index > 0:
            self._advance(records[index - 1])
            self._failures_in_row = 0
        self._report("partial", records, batch, result, index, duration_ms)
        batch.records = records[index:]
        batch.failed_attempts = batch.failed_attempts + 1 if index == 0 else 1
        batch.named_failure = True
        batch.last_error = (
            f"the function reported record {records[index]['dynamodb']['SequenceNumber']} as failed"
        )
        return not self._maybe_give_up(batch)

    def _failed(self, batch: _Batch, result: InvokeResult, duration_ms: float) -> bool:
        """The whole batch failed: halve it when bisecting, else count a retry. True: back off first."""
        records = batch.records
        self._report("error", records, batch, result, 0, duration_ms)
        batch.failed_attempts += 1
        batch.named_failure = False
        batch.last_error = result.error or "function error"
        if self.options.bisect and len(records) > 1:
            middle = len(records) // 2  # splitting is not a retry: each half gets max_retries of its own
            self._pending.popleft()
            self._pending.extendleft([_Batch(records[middle:]), _Batch(records[:middle])])
            return True
        return not self._maybe_give_up(batch)

    def _maybe_give_up(self, batch: _Batch) -> bool:
        """After ``max_retries`` failed retries, store the failing records whole and move past them.

        A record named by ``batchItemFailures`` is the one that fails, so only it goes; after a
        whole-batch error the whole (possibly bisected) batch goes, as Lambda discards it.
        """
        limit = self.options.max_retries
        if limit < 0 or batch.failed_attempts <= limit:
            return False
        doomed = batch.records[:1] if batch.named_failure else list(batch.records)
        started = self._clock()
        for record in doomed:
            if not self._dead_letter(record, batch.last_error):
                return False  # stopping: nothing checkpointed past what is stored
            self._advance(record)
        remaining = batch.records[len(doomed) :]
        self._pending.popleft()
        if remaining:
            self._pending.appendleft(_Batch(remaining))
        self._failures_in_row = 0
        self._report(
            "dead_lettered",
            doomed,
            batch,
            InvokeResult(error=batch.last_error),
            0,
            (self._clock() - started) * 1000,
        )
        return True

    def _dead_letter(self, record: dict[str, Any], error: str) -> bool:
        """Store ``record`` by the one dead-letter rule, retrying the store until it works or the run stops."""
        letter = self._letters.letter(
            record,
            "retries_exhausted",
            error,
            sequence=record["dynamodb"]["SequenceNumber"],
        )
        attempts = 0
        while True:
            failure = self._letters.keep(letter)
            if failure is None:
                logger.warning(
                    "shard %s: record %s dead-lettered as %s after %d retries: %s",
                    self.shard.shard_id,
                    letter.sequence_number,
                    letter.id,
                    self.options.max_retries,
                    error,
                )
                return True
            attempts += 1
            delay = self._backoff(attempts)
            logger.error("dead letter for %s not stored; retrying in %.1fs", letter.sequence_number, delay)
            if self.control.wait(delay):
                return False

    # bookkeeping -----------------------------------------------------------------------------------
    def _advance(self, record: dict[str, Any]) -> None:
        self.checkpoints.advance(
            self.reader.stream_arn,
            self.shard.shard_id,
            record["dynamodb"]["SequenceNumber"],
            self.shard.parent_shard_id,
        )

    def _backoff(self, failures: int) -> float:
        """Bounded exponential backoff with a little jitter (the same shape as projector.retry's policy)."""
        base = self.options.backoff_initial_s * (2.0 ** max(0, failures - 1))
        return min(self.options.backoff_max_s, base) * random.uniform(0.8, 1.0)

    def _report(
        self,
        outcome: Outcome,
        records: list[dict[str, Any]],
        batch: _Batch,
        result: InvokeResult,
        applied: int,
        duration_ms: float,
    ) -> None:
        failures = len(result.reported) if result.error is None else len(records)
        checkpoint = self.checkpoints.get(self.reader.stream_arn, self.shard.shard_id)
        self.control.report(
            BatchReport(
                shard_id=self.shard.shard_id,
                outcome=outcome,
                records=len(records),
                first_sequence_number=records[0]["dynamodb"]["SequenceNumber"] if records else None,
                last_sequence_number=records[-1]["dynamodb"]["SequenceNumber"] if records else None,
                failures=0 if outcome == "ok" else failures,
                attempt=batch.failed_attempts + 1 if outcome != "dead_lettered" else batch.failed_attempts,
                applied=applied,
                lag_s=lag_seconds(records),
                duration_ms=duration_ms,
                checkpoint=checkpoint.sequence_number if checkpoint else None,
                error=result.error,
            )
        )


def _size(record: dict[str, Any]) -> int:
    return len(json.dumps(record, separators=(",", ":")))
