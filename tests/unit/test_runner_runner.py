"""The runner over synthetic shards: lineage order, new shards while running, --from latest, restarts."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import pytest
from test_runner_consumer import MemoryDeadLetters, Recorder
from test_runner_fakes import ARN, FakeDynamoDB, FakeStreams, client_error

from projector.config.settings import Settings
from projector.runner import Runner, RunnerOptions, StreamNotFound
from projector.runner.checkpoints import CheckpointStore
from tests.support.polling import wait_until

pytestmark = pytest.mark.unit


def _runner(tmp_path: Path, streams: FakeStreams, handler: Any, **options: Any) -> Runner:
    settings = Settings(source_table="orders", state_dir=str(tmp_path), dead_letters=f"file://{tmp_path}/dl")
    defaults = {
        "discover_interval_s": 0.05,
        "poll_interval_s": 0.01,
        "backoff_initial_s": 0.001,
        "backoff_max_s": 0.002,
        "until_idle_s": 0.3,
    }
    return Runner(
        handler,
        options=RunnerOptions(**{**defaults, **options}),
        settings=settings,
        streams=streams,
        dynamodb=FakeDynamoDB({"orders": ARN, "plain": None}),
        dead_letters=MemoryDeadLetters(),
    )


def _split_stream() -> tuple[FakeStreams, dict[str, list[str]]]:
    streams = FakeStreams(page_size=2)
    streams.add_shard("parent")
    numbers = {"parent": [streams.put("parent", f"p{index}") for index in range(3)]}
    streams.close("parent")
    for child in ("left", "right"):
        streams.add_shard(child, parent="parent")
        numbers[child] = [streams.put(child, f"{child}{index}") for index in range(2)]
    streams.add_shard("grandchild", parent="left")
    numbers["grandchild"] = [streams.put("grandchild", "g")]
    return streams, numbers


def test_children_are_read_only_after_their_parent_is_finished(tmp_path: Path) -> None:
    streams, numbers = _split_stream()
    streams.close("left")
    handler = Recorder()

    summary = _runner(tmp_path, streams, handler, batch_size=2).run()

    delivered = handler.delivered
    assert sorted(delivered) == sorted(n for shard in numbers.values() for n in shard)
    last_parent = max(delivered.index(n) for n in numbers["parent"])
    assert all(
        delivered.index(n) > last_parent for shard in ("left", "right", "grandchild") for n in numbers[shard]
    )
    assert delivered.index(numbers["grandchild"][0]) > max(delivered.index(n) for n in numbers["left"])
    store = CheckpointStore.for_table(tmp_path, "orders")
    assert store.finished(ARN) == {"parent", "left"}
    assert store.get(ARN, "right").sequence_number == numbers["right"][-1]
    assert summary.stop_reason == "idle for 0.3s" and set(summary.finished_shards) == {"parent", "left"}


def test_new_shards_are_picked_up_while_running(tmp_path: Path) -> None:
    streams = FakeStreams()
    streams.add_shard("first")
    first = streams.put("first", "a")
    handler = Recorder()
    runner = _runner(tmp_path, streams, handler, until_idle_s=None)
    thread = threading.Thread(target=runner.run, daemon=True)
    thread.start()
    _wait(lambda: handler.delivered == [first])

    streams.close("first")
    streams.add_shard("second", parent="first")
    second = streams.put("second", "b")
    _wait(lambda: handler.delivered == [first, second])

    runner.stop("test")
    thread.join(5)
    assert not thread.is_alive()


def test_from_latest_skips_old_shards_and_records_on_a_fresh_stream(tmp_path: Path) -> None:
    streams, _ = _split_stream()
    handler = Recorder()
    runner = _runner(tmp_path, streams, handler, start="latest", until_idle_s=None)
    thread = threading.Thread(target=runner.run, daemon=True)
    thread.start()
    _wait(lambda: any(call == "get_records" for call, _ in streams.calls))
    time.sleep(0.1)
    fresh = streams.put("right", "new")
    _wait(lambda: handler.delivered == [fresh])
    runner.stop("test")
    thread.join(5)

    store = CheckpointStore.for_table(tmp_path, "orders")
    assert store.get(ARN, "parent").finished and store.get(ARN, "parent").note == "skipped: --from latest"


def test_a_restart_resumes_after_the_checkpoint(tmp_path: Path) -> None:
    streams = FakeStreams()
    streams.add_shard("s")
    numbers = [streams.put("s", f"k{index}") for index in range(5)]
    first = Recorder()
    _runner(tmp_path, streams, first, batch_size=2, max_batches=2).run()
    assert first.delivered == numbers[:4]

    later = [streams.put("s", "k5")]
    second = Recorder()
    _runner(tmp_path, streams, second, batch_size=10, start="latest").run()  # --from is ignored now
    assert second.delivered == numbers[4:] + later


def test_a_table_without_a_stream_is_a_clear_error(tmp_path: Path) -> None:
    runner = _runner(tmp_path, FakeStreams(), Recorder())
    runner.settings = Settings(source_table="plain", state_dir=str(tmp_path))
    with pytest.raises(StreamNotFound):
        runner.run()


def test_a_shard_that_cannot_be_read_stops_the_run_with_its_error(tmp_path: Path) -> None:
    streams = FakeStreams()
    streams.add_shard("s")
    streams.put("s", "k")
    streams.fail_next.append(client_error("AccessDeniedException"))
    with pytest.raises(Exception, match="AccessDenied"):
        _runner(tmp_path, streams, Recorder()).run()


def test_transient_read_errors_are_retried(tmp_path: Path) -> None:
    streams = FakeStreams()
    streams.add_shard("s")
    number = streams.put("s", "k")
    streams.fail_next.extend([client_error("ProvisionedThroughputExceededException")] * 3)
    handler = Recorder()
    _runner(tmp_path, streams, handler).run()
    assert handler.delivered == [number]


def _wait(condition: Any, seconds: float = 5.0) -> None:
    wait_until(condition, seconds, 0.01)
