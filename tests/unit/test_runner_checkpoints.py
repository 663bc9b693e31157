"""Checkpoints: what was applied, per stream and shard, on disk and atomically replaced."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from projector.runner.checkpoints import CheckpointStore, StreamCheckpointError
from projector.statefiles import write_atomically

pytestmark = pytest.mark.unit

ARN = "arn:aws:dynamodb:us-east-1:123456789012:table/orders/stream/1"


def test_checkpoints_survive_a_restart(tmp_path: Path) -> None:
    store = CheckpointStore.for_table(tmp_path, "orders")
    store.advance(ARN, "shard-1", "105")
    store.advance(ARN, "shard-2", "900", parent_shard_id="shard-1")
    store.finish(ARN, "shard-1")

    again = CheckpointStore.for_table(tmp_path, "orders")
    assert again.path == tmp_path / "checkpoints" / "orders.json"
    assert again.get(ARN, "shard-1").sequence_number == "105"
    assert again.finished(ARN) == {"shard-1"}
    assert again.get(ARN, "shard-2").parent_shard_id == "shard-1"
    assert again.shards("another-stream") == {}

    document = json.loads(again.path.read_text())
    assert document["format"] == 1 and document["table"] == "orders"
    assert document["streams"][ARN]["shards"]["shard-1"]["finished"] is True


def test_a_checkpoint_never_moves_back(tmp_path: Path) -> None:
    store = CheckpointStore.for_table(tmp_path, "orders")
    store.advance(ARN, "s", "1000")
    store.advance(ARN, "s", "999")  # numbers compare as numbers, not text
    assert store.get(ARN, "s").sequence_number == "1000"
    store.advance(ARN, "s", "10000")
    assert store.get(ARN, "s").sequence_number == "10000"


def test_forget_drops_trimmed_shards(tmp_path: Path) -> None:
    store = CheckpointStore.for_table(tmp_path, "orders")
    store.finish(ARN, "old")
    store.advance(ARN, "new", "5")
    store.forget(ARN, {"old"})
    assert set(CheckpointStore.for_table(tmp_path, "orders").shards(ARN)) == {"new"}


def test_writes_leave_no_temporary_files(tmp_path: Path) -> None:
    store = CheckpointStore.for_table(tmp_path, "orders")
    for number in range(20):
        store.advance(ARN, "s", str(number))
    assert [path.name for path in store.path.parent.iterdir()] == ["orders.json"]


def test_a_failed_write_keeps_the_old_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "state.json"
    write_atomically(target, "old\n")

    def broken(*args: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr("os.replace", broken)
    with pytest.raises(OSError, match="disk full"):
        write_atomically(target, "new\n")
    assert target.read_text() == "old\n"
    assert [path.name for path in tmp_path.iterdir()] == ["state.json"]


def test_an_unreadable_file_is_an_error_not_a_fresh_start(tmp_path: Path) -> None:
    path = tmp_path / "checkpoints" / "orders.json"
    path.parent.mkdir()
    path.write_text("{ torn")
    with pytest.raises(StreamCheckpointError, match="move it aside"):
        CheckpointStore.for_table(tmp_path, "orders")
