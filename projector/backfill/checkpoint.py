"""Backfill checkpoints: per segment, the scan's LastEvaluatedKey after that page's writes succeeded.

One JSON file per table and segment range under ``settings.state_dir`` (``backfill/<table>.json``, or
``backfill/<table>.<A>-<B>of<T>.json`` for one piece of a split run), rewritten whole and atomically
after every page (``projector.statefiles.write_atomically``), so ``kill -9`` leaves the old or the new file.
A resumed run re-reads at most the page each segment had in flight; re-applying it is harmless
because every write is versioned.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from projector.exceptions import ProjectorError
from projector.jsonsafe import jsonable, key_from_json
from projector.statefiles import write_atomically

logger = logging.getLogger(__name__)

FORMAT = 1


class ScanCheckpointError(ProjectorError):
    """A backfill's scan checkpoint is unreadable or belongs to another kind of run than the one asked."""


@dataclass(frozen=True, slots=True)
class SegmentRange:
    """Segments ``start`` .. ``stop - 1`` of a scan split into ``total`` segments."""

    total: int
    start: int = 0
    stop: int | None = None

    def __post_init__(self) -> None:
        stop = self.total if self.stop is None else self.stop
        if not (self.total >= 1 and 0 <= self.start < stop <= self.total):
            raise ValueError(f"segment range {self.start}:{stop} is not within 0:{self.total}")
        object.__setattr__(self, "stop", stop)

    @property
    def segments(self) -> range:
        return range(self.start, self.stop or self.total)

    @property
    def whole(self) -> bool:
        return self.start == 0 and self.stop == self.total

    @property
    def fraction(self) -> float:
        return len(self.segments) / self.total

    def label(self) -> str:
        return f"{self.start}-{self.stop}of{self.total}"

    @classmethod
    def parse(cls, total: int, text: str | None) -> SegmentRange:
        """``A:B`` (``A:`` and ``:B`` too) of ``total`` segments; the whole scan when ``text`` is None."""
        if not text:
            return cls(total)
        start, sep, stop = text.partition(":")
        if not sep:
            raise ValueError(f"--segment-range must look like A:B, got {text!r}")
        return cls(total, int(start or 0), int(stop) if stop else None)


@dataclass(slots=True)
class SegmentState:
    """One segment's progress: where to continue (None: from the start) and whether it is done."""

    key: dict[str, Any] | None = None
    done: bool = False
    items: int = 0
    pages: int = 0

    def to_json(self) -> dict[str, Any]:
        return {"key": jsonable(self.key), "done": self.done, "items": self.items, "pages": self.pages}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> SegmentState:
        return cls(
            key=key_from_json(data.get("key")),
            done=bool(data.get("done")),
            items=int(data.get("items", 0)),
            pages=int(data.get("pages", 0)),
        )


@dataclass
class Checkpoint:
    """The state of one backfill run (or of one piece of a split run), kept on disk."""

    path: Path | None  # None: kept in memory only (a dry run)
    table: str
    segments: SegmentRange
    scan_started_at: float
    projections: list[str]
    run_id: str = field(default_factory=lambda: uuid.uuid4().hex[:12])
    rebuild: dict[str, dict[str, Any]] | None = None
    source: dict[str, Any] | None = None  # an export load: its folder, time and files (None: a scan)
    states: dict[int, SegmentState] = field(default_factory=dict)
    finished_at: float | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def __post_init__(self) -> None:
        for segment in self.segments.segments:
            self.states.setdefault(segment, SegmentState())

    @staticmethod
    def path_for(state_dir: str | Path, table: str, segments: SegmentRange, label: str | None = None) -> Path:
        """``<table>.json``; a piece of a split run adds its range, a run of its own (a repair) its label."""
        parts = [table, *([label] if label else []), *([] if segments.whole else [segments.label()])]
        return Path(state_dir) / "backfill" / (".".join(parts) + ".json")

    @property
    def done(self) -> bool:
        return all(state.done for state in self.states.values())

    def unfinished(self) -> list[int]:
        return [segment for segment, state in sorted(self.states.items()) if not state.done]

    def advance(self, segment: int, key: dict[str, Any] | None, items: int) -> None:
        """Record a page whose writes all succeeded: continue after ``key`` (None: the segment is done)."""
        with self._lock:
            state = self.states[segment]
            state.key, state.done = key, key is None
            state.items += items
            state.pages += 1
            self._save()

    def finish(self) -> None:
        with self._lock:
            self.finished_at = time.time()
            self._save()

    def save(self) -> None:
        with self._lock:
            self._save()

    def _save(self) -> None:
        if self.path is None:
            return
        document = {
            "format": FORMAT,
            "run_id": self.run_id,
            "table": self.table,
            "scan_started_at": self.scan_started_at,
            "total_segments": self.segments.total,
            "segment_range": [self.segments.start, self.segments.stop],
            "projections": self.projections,
            "rebuild": self.rebuild,
            "source": self.source,
            "finished_at": self.finished_at,
            "segments": {str(segment): state.to_json() for segment, state in sorted(self.states.items())},
        }
        write_atomically(self.path, json.dumps(document, indent=1) + "\n")

    @classmethod
    def load(cls, path: Path) -> Checkpoint | None:
        """The checkpoint at ``path``; None when there is none."""
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        except ValueError as error:
            raise ScanCheckpointError(f"cannot read {path}: {error}; move it aside to start over") from None
        try:
            if data.get("format") != FORMAT:
                raise ValueError(f"unknown format {data.get('format')!r}")
            start, stop = data["segment_range"]
            return cls(
                path=path,
                table=data["table"],
                segments=SegmentRange(int(data["total_segments"]), start, stop),
                scan_started_at=float(data["scan_started_at"]),
                projections=list(data["projections"]),
                run_id=data["run_id"],
                rebuild=data.get("rebuild"),
                source=data.get("source"),
                finished_at=data.get("finished_at"),
                states={int(k): SegmentState.from_json(v) for k, v in data["segments"].items()},
            )
        except (KeyError, TypeError, ValueError) as error:
            raise ScanCheckpointError(f"cannot read {path}: {error}; move it aside to start over") from None
