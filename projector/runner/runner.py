"""The runner: the source table's stream fed to the handler the way Lambda's event source mapping does.

It finds the stream, re-describes it periodically (and as soon as a shard finishes) to pick up new
shards, starts one consumer thread per shard whose parent is finished, and stops cleanly on request:
the in-flight batch completes and is checkpointed for what it applied, nothing further is started.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, Protocol

from projector.retry import Deadline, RetryPolicy, retrying
from projector.retry.transient import is_transient
from projector.runner.checkpoints import CheckpointStore
from projector.runner.consumer import ConsumerOptions, ShardConsumer
from projector.runner.control import RunControl
from projector.runner.invoker import (
    DEFAULT_HANDLER,
    Handler,
    HttpInvoker,
    InProcessInvoker,
    Invoker,
    load_handler,
)
from projector.runner.reader import ShardReader, StartingPosition
from projector.runner.reports import BatchReport
from projector.runner.shards import Shard, describe_shards, find_stream_arn, ready_shards, skipped_by_latest

if TYPE_CHECKING:
    from projector.config.settings import Settings
    from projector.deadletters import DeadLetterStore

logger = logging.getLogger(__name__)

MAX_BATCH_SIZE = 10_000  # Lambda's limit for DynamoDB Streams
MAX_WINDOW_S = 300.0  # Lambda's MaximumBatchingWindowInSeconds limit
MAX_RETRIES = 10_000  # Lambda's MaximumRetryAttempts limit
STARTUP_RETRY_S = 60.0  # how long a start waits out a network fault before giving up
STARTUP_POLICY = RetryPolicy(max_attempts=1000, max_wait_s=5.0)  # bounded by STARTUP_RETRY_S, not attempts

StartAt = Literal["trim-horizon", "latest"]  # StartingPosition TRIM_HORIZON / LATEST


@dataclass(frozen=True)
class RunnerOptions:
    """``projector run``'s options; the names follow Lambda's event source mapping where one exists."""

    batch_size: int = 100
    window_s: float = 0.0
    start: StartAt = "trim-horizon"
    bisect: bool = False
    max_retries: int = 10
    timeout_s: float = 60.0
    max_batches: int | None = None
    until_idle_s: float | None = None
    invoke_url: str | None = None
    handler: str = DEFAULT_HANDLER
    function_name: str = "projector"
    discover_interval_s: float = 10.0
    poll_interval_s: float = 0.25
    backoff_initial_s: float = 0.2
    backoff_max_s: float = 30.0

    def __post_init__(self) -> None:
        if not 1 <= self.batch_size <= MAX_BATCH_SIZE:
            raise ValueError(f"batch size must be 1..{MAX_BATCH_SIZE}, got {self.batch_size}")
        if not 0 <= self.window_s <= MAX_WINDOW_S:
            raise ValueError(f"batching window must be 0..{MAX_WINDOW_S:.0f} seconds, got {self.window_s}")
        if not -1 <= self.max_retries <= MAX_RETRIES:
            raise ValueError(f"max retries must be -1 (forever) or 0..{MAX_RETRIES}, got {self.max_retries}")
        if self.start not in ("trim-horizon", "latest"):
            raise ValueError(f"starting position must be trim-horizon or latest, got {self.start!r}")
        if self.timeout_s <= 0:
            raise ValueError("timeout must be positive")
        if self.max_batches is not None and self.max_batches < 1:
            raise ValueError("max batches must be at least 1")

    def consumer_options(self) -> ConsumerOptions:
        return ConsumerOptions(
            batch_size=self.batch_size,
            window_s=self.window_s,
            bisect=self.bisect,
            max_retries=self.max_retries,
            poll_interval_s=self.poll_interval_s,
            backoff_initial_s=self.backoff_initial_s,
            backoff_max_s=self.backoff_max_s,
        )


@dataclass
class RunSummary:
    """How a run ended."""

    stream_arn: str
    batches: int
    stop_reason: str
    finished_shards: list[str] = field(default_factory=list)


@dataclass
class _Worker:
    shard: Shard
    consumer: ShardConsumer
    thread: threading.Thread
    finished: bool = False
    error: BaseException | None = None


class Runner:
    """Reads the source table's stream and invokes the handler (in-process, or over HTTP) batch by batch.

    ``handler`` is called in-process when given; otherwise ``options.invoke_url`` selects HTTP, else
    ``options.handler`` (default ``projector.handler.lambda_handler``) is imported when the run starts.
    """

    def __init__(
        self,
        handler: Handler | None = None,
        *,
        options: RunnerOptions | None = None,
        settings: Settings | None = None,
        invoker: Invoker | None = None,
        on_batch: Callable[[BatchReport], None] | None = None,
        streams: Any = None,
        dynamodb: Any = None,
        checkpoints: CheckpointStore | None = None,
        dead_letters: DeadLetterStore | None = None,
    ) -> None:
        if settings is None:
            from projector.config import load_settings

            settings = load_settings()
        self.settings = settings
        self.options = options or RunnerOptions()
        self._handler = handler
        self._invoker = invoker
        self._streams = streams
        self._dynamodb = dynamodb
        self.checkpoints = checkpoints or CheckpointStore.for_table(settings.state_dir, settings.source_table)
        self._dead_letters = dead_letters
        self.control = RunControl(self.options.max_batches, on_batch)
        self._workers: dict[str, _Worker] = {}
        self._finished: list[str] = []
        self._latest: set[str] = set()
        self._idle_base = time.monotonic()
        self.stream_arn: str | None = None

    # public ----------------------------------------------------------------------------------------
    @property
    def stopping(self) -> bool:
        return self.control.stopping

    def stop(self, reason: str = "stopped") -> None:
        """Ask the run to end: in-flight batches finish and are checkpointed, nothing new starts."""
        self.control.stop(reason)

    def run(self) -> RunSummary:
        """Consume until stopped, ``max_batches`` batches, or ``until_idle_s`` of silence."""
        invoker = self._make_invoker()
        streams, dynamodb = self._clients()
        for attempt in retrying(
            Deadline.after(STARTUP_RETRY_S), is_transient, STARTUP_POLICY, "DescribeTable"
        ):
            with attempt:
                arn = self.stream_arn = find_stream_arn(dynamodb, self.settings.source_table)
        dead_letters = self._dead_letter_store()
        fresh = not self.checkpoints.shards(arn)
        logger.info(
            "reading %s (%s)",
            arn,
            "no checkpoint yet" if fresh else f"checkpoints in {self.checkpoints.path}",
        )
        next_describe, first = 0.0, True
        self._idle_base = time.monotonic()
        try:
            while not self.control.stopping:
                if time.monotonic() >= next_describe:
                    shards = self._describe(streams, arn)
                    if shards is not None:
                        if first:
                            self._first_look(arn, shards, fresh)
                            first = False
                        self._forget_trimmed(arn, shards)
                        self._start_ready(arn, shards, streams, invoker, dead_letters)
                    next_describe = time.monotonic() + self.options.discover_interval_s
                if self._reap():
                    next_describe = 0.0  # a shard finished: its children may start now
                    continue
                if self.options.until_idle_s is not None and self._idle_for() >= self.options.until_idle_s:
                    self.control.stop(f"idle for {self.options.until_idle_s:g}s")
                    break
                if self.control.wake.wait(0.2):
                    self.control.wake.clear()
                    next_describe = 0.0
        finally:
            self.control.stop(self.control.stop_reason or "stopped")
            self._join()
        failed = [worker.error for worker in self._workers.values() if worker.error is not None]
        if failed:
            raise failed[0]
        return RunSummary(
            arn, self.control.batches, self.control.stop_reason or "stopped", list(self._finished)
        )

    # setup -----------------------------------------------------------------------------------------
    def _make_invoker(self) -> Invoker:
        if self._invoker is not None:
            return self._invoker
        if self._handler is None and self.options.invoke_url:
            return HttpInvoker(self.options.invoke_url, self.options.timeout_s)
        handler = self._handler or load_handler(self.options.handler)
        return InProcessInvoker(
            handler, self.options.timeout_s, self.options.function_name, self.settings.region
        )

    def _clients(self) -> tuple[Any, Any]:
        from projector.clients import dynamodb_client, streams_client

        return (
            self._streams or streams_client(self.settings),
            self._dynamodb or dynamodb_client(self.settings),
        )

    def _dead_letter_store(self) -> DeadLetterStore:
        if self._dead_letters is None:
            from projector.deadletters import open_store

            self._dead_letters = open_store(self.settings)
        return self._dead_letters

    # shards ----------------------------------------------------------------------------------------
    def _describe(self, streams: Any, arn: str) -> list[Shard] | None:
        try:
            return describe_shards(streams, arn)
        except Exception as error:
            if not is_transient(error):
                raise
            logger.warning("DescribeStream failed (%s); trying again later", error)
            return None

    def _first_look(self, arn: str, shards: Sequence[Shard], fresh: bool) -> None:
        """``--from latest`` on a stream never read: closed shards are skipped, open ones start at LATEST."""
        if not fresh or self.options.start != "latest":
            return
        for shard in skipped_by_latest(shards):
            self.checkpoints.finish(arn, shard.shard_id, shard.parent_shard_id, note="skipped: --from latest")
        self._latest = {shard.shard_id for shard in shards if not shard.closed}

    def _forget_trimmed(self, arn: str, shards: Sequence[Shard]) -> None:
        described = {shard.shard_id for shard in shards}
        gone = {
            shard_id
            for shard_id, point in self.checkpoints.shards(arn).items()
            if point.finished and shard_id not in described
        }
        if gone:
            self.checkpoints.forget(arn, gone)

    def _start_ready(
        self, arn: str, shards: Sequence[Shard], streams: Any, invoker: Invoker, dead_letters: DeadLetterStore
    ) -> None:
        busy = {shard_id for shard_id, worker in self._workers.items() if not worker.finished or worker.error}
        for shard in ready_shards(shards, self.checkpoints.finished(arn), busy):
            if self.control.stopping:
                return
            reader = ShardReader(streams, arn, shard, self._position(arn, shard), self.settings.region)
            consumer = ShardConsumer(
                reader, invoker, self.checkpoints, dead_letters, self.control, self.options.consumer_options()
            )
            thread = threading.Thread(
                target=self._work, args=(shard.shard_id,), name=f"shard-{shard.shard_id[-8:]}", daemon=True
            )
            self._workers[shard.shard_id] = _Worker(shard, consumer, thread)
            logger.info("shard %s: reading from %s", shard.shard_id, reader.start.describe())
            thread.start()

    def _position(self, arn: str, shard: Shard) -> StartingPosition:
        point = self.checkpoints.get(arn, shard.shard_id)
        if point is not None and point.sequence_number:
            return StartingPosition.after(point.sequence_number)
        if shard.shard_id in self._latest:
            return StartingPosition.latest()
        return StartingPosition.trim_horizon()

    def _work(self, shard_id: str) -> None:
        worker = self._workers[shard_id]
        try:
            worker.finished = worker.consumer.run()
        except BaseException as error:
            worker.error = error
            logger.error("shard %s stopped: %s: %s", worker.shard.shard_id, type(error).__name__, error)
            self.control.stop(f"shard {worker.shard.shard_id} failed: {error}")
        finally:
            self.control.wake.set()

    def _reap(self) -> bool:
        """Forget consumers that finished their shard; True when one did."""
        done = [
            shard_id
            for shard_id, worker in self._workers.items()
            if worker.finished and not worker.thread.is_alive()
        ]
        for shard_id in done:
            self._finished.append(shard_id)
            del self._workers[shard_id]
            self._idle_base = time.monotonic()
        return bool(done)

    def _idle_for(self) -> float:
        """Seconds since the last record was seen anywhere (0 while any shard holds or receives records)."""
        marks = [worker.consumer.idle_since for worker in self._workers.values() if worker.thread.is_alive()]
        if any(mark is None for mark in marks):
            return 0.0
        return time.monotonic() - max([*(mark for mark in marks if mark is not None), self._idle_base])

    def _join(self) -> None:
        for worker in list(self._workers.values()):
            while worker.thread.is_alive():
                worker.thread.join(0.2)


class Stoppable(Protocol):
    """What ``stop_on_signals`` stops: the stream runner, and a backfill (``projector.backfill.Backfill``)."""

    @property
    def stopping(self) -> bool: ...

    def stop(self, reason: str) -> None: ...


@contextmanager
def stop_on_signals(runner: Stoppable) -> Iterator[None]:
    """SIGINT/SIGTERM stop the run cleanly; a second one abandons the in-flight batch (KeyboardInterrupt)."""

    def handle(signum: int, frame: object) -> None:
        name = signal.Signals(signum).name
        if runner.stopping:
            raise KeyboardInterrupt(f"second {name}")
        logger.warning("%s received: finishing the in-flight batch, then stopping", name)
        runner.stop(f"{name} received")

    previous = {number: signal.signal(number, handle) for number in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)
