"""One shard's loop: batching, batchItemFailures, whole-batch errors, bisecting, dead letters, stopping."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from test_runner_fakes import ARN, FakeStreams

from projector.deadletters import DeadLetter, DeadLetterStore
from projector.runner.checkpoints import CheckpointStore
from projector.runner.consumer import ConsumerOptions, ShardConsumer
from projector.runner.control import RunControl
from projector.runner.invoker import InProcessInvoker
from projector.runner.reader import ReadResult, ShardReader, StartingPosition
from projector.runner.reports import BatchReport
from projector.runner.shards import Shard

pytestmark = pytest.mark.unit

FAST = {"poll_interval_s": 0.01, "backoff_initial_s": 0.001, "backoff_max_s": 0.002}


class MemoryDeadLetters(DeadLetterStore):
    def __init__(self) -> None:
        self.letters: list[DeadLetter] = []

    def put(self, letter: DeadLetter) -> str:
        self.letters.append(letter)
        return f"memory:{len(self.letters)}"

    def list(self, include_redriven: bool = False) -> Iterator[DeadLetter]:
        return iter(self.letters)

    def mark_redriven(self, letter: DeadLetter) -> None:
        pass


class Recorder:
    """A handler that records every batch and answers with ``decide(sequence numbers) -> response``."""

    def __init__(self, decide: Callable[[list[str]], Any] | None = None) -> None:
        self.batches: list[list[str]] = []
        self.decide = decide or (lambda numbers: {"batchItemFailures": []})

    def __call__(self, event: dict[str, Any], context: Any) -> Any:
        numbers = [record["dynamodb"]["SequenceNumber"] for record in event["Records"]]
        self.batches.append(numbers)
        return self.decide(numbers)

    @property
    def delivered(self) -> list[str]:
        return [number for batch in self.batches for number in batch]


class Setup:
    def __init__(self, tmp_path: Path, count: int, close: bool = True) -> None:
        self.streams = FakeStreams()
        self.streams.add_shard("s")
        self.numbers = [self.streams.put("s", f"k{index}") for index in range(count)]
        if close:
            self.streams.close("s")
        self.checkpoints = CheckpointStore.for_table(tmp_path, "orders")
        self.dead_letters = MemoryDeadLetters()
        self.reports: list[BatchReport] = []
        self.control = RunControl(on_batch=self.reports.append)

    def consumer(self, handler: Callable[..., Any], reader: Any = None, **options: Any) -> ShardConsumer:
        reader = reader or ShardReader(
            self.streams, ARN, Shard("s"), StartingPosition.trim_horizon(), "us-east-1"
        )
        return ShardConsumer(
            reader,
            InProcessInvoker(handler),
            self.checkpoints,
            self.dead_letters,
            self.control,
            ConsumerOptions(**{**FAST, **options}),
        )

    @property
    def checkpoint(self) -> str | None:
        point = self.checkpoints.get(ARN, "s")
        return point.sequence_number if point else None


def test_batches_in_order_respecting_the_batch_size(tmp_path: Path) -> None:
    setup = Setup(tmp_path, 7)
    handler = Recorder()

    assert setup.consumer(handler, batch_size=3).run() is True

    assert handler.batches == [setup.numbers[0:3], setup.numbers[3:6], setup.numbers[6:]]
    assert setup.checkpoint == setup.numbers[-1]
    assert setup.checkpoints.finished(ARN) == {"s"}
    assert [report.outcome for report in setup.reports] == ["ok"] * 3


def test_a_reported_failure_resends_from_exactly_that_record(tmp_path: Path) -> None:
    setup = Setup(tmp_path, 6)
    failing = setup.numbers[2]
    failed = []

    def decide(numbers: list[str]) -> dict[str, Any]:
        if failing in numbers and not failed:
            failed.append(failing)
            return {"batchItemFailures": [{"itemIdentifier": failing}, {"itemIdentifier": numbers[-1]}]}
        return {}

    handler = Recorder(decide)
    setup.consumer(handler, batch_size=4).run()

    assert handler.batches[0] == setup.numbers[0:4]
    assert handler.batches[1][0] == failing
    assert sorted(set(handler.delivered)) == setup.numbers
    assert setup.checkpoint == setup.numbers[-1]
    partial = setup.reports[0]
    assert (partial.outcome, partial.applied, partial.failures, partial.checkpoint) == (
        "partial",
        2,
        2,
        setup.numbers[1],
    )


def test_a_raising_handler_retries_the_whole_batch(tmp_path: Path) -> None:
    setup = Setup(tmp_path, 3)
    calls = []

    def flaky(event: dict[str, Any], context: Any) -> None:
        calls.append(len(event["Records"]))
        if len(calls) < 3:
            raise ConnectionError("opensearch unreachable")

    setup.consumer(flaky, batch_size=10).run()

    assert calls == [3, 3, 3]
    assert [report.outcome for report in setup.reports] == ["error", "error", "ok"]
    assert [report.attempt for report in setup.reports] == [1, 2, 3]
    assert setup.checkpoint == setup.numbers[-1]
    assert setup.dead_letters.letters == []


def test_a_record_that_always_fails_is_dead_lettered_whole_and_the_shard_moves_on(tmp_path: Path) -> None:
    setup = Setup(tmp_path, 5)
    poison = setup.numbers[1]

    def decide(numbers: list[str]) -> dict[str, Any]:
        return {"batchItemFailures": [{"itemIdentifier": poison}]} if poison in numbers else {}

    handler = Recorder(decide)
    setup.consumer(handler, batch_size=5, max_retries=2).run()

    assert sum(poison in batch for batch in handler.batches) == 3  # the first try and 2 retries
    assert handler.batches[1] == [poison, *setup.numbers[2:]]  # retries start at the poison record
    assert handler.batches[-1] == setup.numbers[2:]
    [letter] = setup.dead_letters.letters
    assert letter.reason == "retries_exhausted"
    assert letter.sequence_number == poison and letter.event_source_arn == ARN
    assert letter.record["dynamodb"]["SequenceNumber"] == poison
    assert letter.record["dynamodb"]["Keys"] == {"id": {"S": "k1"}}
    assert setup.checkpoint == setup.numbers[-1]
    assert "dead_lettered" in [report.outcome for report in setup.reports]


def _raises_on(poison: str) -> Recorder:
    def decide(numbers: list[str]) -> Any:
        if poison in numbers:
            raise ValueError(f"cannot apply {poison}")
        return None

    return Recorder(decide)


def test_without_bisect_a_failing_batch_is_dead_lettered_whole(tmp_path: Path) -> None:
    setup = Setup(tmp_path, 4)
    handler = _raises_on(setup.numbers[2])

    setup.consumer(handler, batch_size=4, max_retries=1).run()

    assert [letter.sequence_number for letter in setup.dead_letters.letters] == setup.numbers
    assert "ValueError" in setup.dead_letters.letters[0].error
    assert setup.checkpoint == setup.numbers[-1]


def test_bisect_narrows_a_failing_batch_to_the_bad_record(tmp_path: Path) -> None:
    setup = Setup(tmp_path, 8)
    poison = setup.numbers[5]
    handler = _raises_on(poison)

    setup.consumer(handler, batch_size=8, max_retries=1, bisect=True).run()

    assert [letter.sequence_number for letter in setup.dead_letters.letters] == [poison]
    applied = {number for batch in handler.batches if poison not in batch for number in batch}
    assert applied == set(setup.numbers) - {poison}
    assert handler.batches[:3] == [setup.numbers, setup.numbers[:4], setup.numbers[4:]]
    assert setup.checkpoint == setup.numbers[-1]


def test_stopping_during_retries_checkpoints_only_what_was_applied(tmp_path: Path) -> None:
    setup = Setup(tmp_path, 4)
    poison = setup.numbers[2]

    def decide(numbers: list[str]) -> dict[str, Any]:
        if len(handler.batches) >= 3:
            setup.control.stop("test")
        return {"batchItemFailures": [{"itemIdentifier": poison}]}

    handler = Recorder(decide)
    assert setup.consumer(handler, batch_size=4, max_retries=-1).run() is False

    assert setup.checkpoint == setup.numbers[1]
    assert setup.checkpoints.finished(ARN) == set()
    assert setup.dead_letters.letters == []


def test_max_batches_stops_after_that_many_invocations(tmp_path: Path) -> None:
    setup = Setup(tmp_path, 10)
    setup.control = RunControl(max_batches=2)
    handler = Recorder()
    assert setup.consumer(handler, batch_size=3).run() is False
    assert len(handler.batches) == 2
    assert setup.checkpoint == setup.numbers[5]


def test_the_payload_limit_cuts_a_batch(tmp_path: Path) -> None:
    setup = Setup(tmp_path, 6)
    handler = Recorder()
    setup.consumer(handler, batch_size=6, max_payload_bytes=1500).run()
    assert len(handler.batches) > 1
    assert handler.delivered == setup.numbers


class Trickle:
    """A reader of an open shard that yields one record per call for ``count`` calls, then nothing."""

    def __init__(self, records: list[dict[str, Any]]) -> None:
        self.records = list(records)
        self.stream_arn = ARN
        self.shard = Shard("s")
        self.end_of_shard = False

    def read(self, limit: int = 1000) -> ReadResult:
        return ReadResult(records=[self.records.pop(0)] if self.records else [])


def _trickle(setup: Setup) -> Trickle:
    reader = ShardReader(setup.streams, ARN, Shard("s"), StartingPosition.trim_horizon(), "us-east-1")
    return Trickle(reader.read().records)


def _run_until(setup: Setup, consumer: ShardConsumer, handled: Callable[[], bool]) -> None:
    thread = threading.Thread(target=consumer.run, daemon=True)
    thread.start()
    for _ in range(300):
        if handled():
            break
        threading.Event().wait(0.01)
    setup.control.stop("test")
    thread.join(5)
    assert not thread.is_alive()


def test_without_a_window_each_read_is_sent_at_once(tmp_path: Path) -> None:
    setup = Setup(tmp_path, 4)
    handler = Recorder()
    consumer = setup.consumer(handler, reader=_trickle(setup), batch_size=10)
    _run_until(setup, consumer, lambda: len(handler.delivered) == 4)
    assert handler.batches == [[number] for number in setup.numbers]


def test_a_batching_window_gathers_records_that_trickle_in(tmp_path: Path) -> None:
    setup = Setup(tmp_path, 4)
    handler = Recorder()
    consumer = setup.consumer(handler, reader=_trickle(setup), batch_size=10, window_s=0.3)
    _run_until(setup, consumer, lambda: len(handler.delivered) == 4)
    assert handler.batches == [setup.numbers]


def test_idle_since_is_set_only_while_nothing_is_held(tmp_path: Path) -> None:
    setup = Setup(tmp_path, 2, close=False)
    handler = Recorder()
    consumer = setup.consumer(handler, batch_size=10)
    assert consumer.idle_since is None
    _run_until(setup, consumer, lambda: consumer.idle_since is not None and len(handler.delivered) == 2)
    assert consumer.idle_since is not None
