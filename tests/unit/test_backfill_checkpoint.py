"""Backfill checkpoints and segment ranges: round trips, atomic files, the keys of binary tables."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from projector.backfill.checkpoint import Checkpoint, ScanCheckpointError, SegmentRange


def test_a_segment_range_parses_and_refuses_what_is_outside_the_scan() -> None:
    assert SegmentRange.parse(8, None).segments == range(0, 8)
    assert SegmentRange.parse(8, "2:5").segments == range(2, 5)
    assert SegmentRange.parse(8, "6:").segments == range(6, 8)
    assert SegmentRange.parse(8, ":3").segments == range(0, 3)
    assert SegmentRange.parse(8, "0:8").whole
    assert SegmentRange.parse(8, "2:4").fraction == 0.25
    for bad in ("5:2", "0:9", "3", "-1:2"):
        with pytest.raises(ValueError):
            SegmentRange.parse(8, bad)


def test_each_piece_of_a_split_run_and_each_labelled_run_has_its_own_file(tmp_path: Path) -> None:
    whole = Checkpoint.path_for(tmp_path, "orders", SegmentRange(4))
    piece = Checkpoint.path_for(tmp_path, "orders", SegmentRange(8, 2, 4))
    repair = Checkpoint.path_for(tmp_path, "orders", SegmentRange(4), label="repair-x")
    assert whole == tmp_path / "backfill" / "orders.json"
    assert piece == tmp_path / "backfill" / "orders.2-4of8.json"
    assert len({whole, piece, repair}) == 3


def test_progress_survives_a_reload_with_binary_keys(tmp_path: Path) -> None:
    path = tmp_path / "backfill" / "t.json"
    checkpoint = Checkpoint(
        path=path,
        table="t",
        segments=SegmentRange(3),
        scan_started_at=123.5,
        projections=["orders"],
        rebuild={"orders": {"kind": "search", "target": "o-g2"}},
    )
    checkpoint.advance(0, {"id": {"B": b"\x00\xff"}, "n": {"N": "5"}}, items=10)
    checkpoint.advance(1, None, items=7)
    loaded = Checkpoint.load(path)
    assert loaded is not None
    assert loaded.run_id == checkpoint.run_id and loaded.scan_started_at == 123.5
    assert loaded.states[0].key == {"id": {"B": b"\x00\xff"}, "n": {"N": "5"}}
    assert (loaded.states[0].items, loaded.states[0].pages, loaded.states[0].done) == (10, 1, False)
    assert loaded.states[1].done and loaded.unfinished() == [0, 2]
    assert loaded.rebuild == {"orders": {"kind": "search", "target": "o-g2"}}
    assert not loaded.done and loaded.finished_at is None
    assert list(path.parent.glob(".*tmp")) == []  # written through a temporary file, nothing left over


def test_a_dry_run_checkpoint_is_never_written(tmp_path: Path) -> None:
    checkpoint = Checkpoint(
        path=None, table="t", segments=SegmentRange(1), scan_started_at=1.0, projections=[]
    )
    checkpoint.advance(0, None, items=1)
    checkpoint.finish()
    assert checkpoint.done and list(tmp_path.iterdir()) == []


def test_a_missing_file_is_none_and_a_torn_or_foreign_one_is_an_error(tmp_path: Path) -> None:
    assert Checkpoint.load(tmp_path / "none.json") is None
    torn = tmp_path / "torn.json"
    torn.write_text('{"format": 1, "run_id"')
    with pytest.raises(ScanCheckpointError, match="move it aside"):
        Checkpoint.load(torn)
    other = tmp_path / "other.json"
    other.write_text(json.dumps({"format": 99}))
    with pytest.raises(ScanCheckpointError):
        Checkpoint.load(other)
