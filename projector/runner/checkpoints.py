"""Checkpoints: per stream and shard, the last sequence number the handler applied (with all before it).

One JSON file per source table under ``settings.state_dir`` (``checkpoints/<table>.json``), rewritten
whole and atomically (temp file, fsync, ``os.replace``, fsync of the folder) after every batch, so a
``kill -9`` leaves either the old or the new file, never a torn one. A restart resumes *after* the
checkpoint; re-applying a record is harmless (the writes are versioned), skipping one is not.
"""

from __future__ import annotations

import json
import logging
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from projector.exceptions import ProjectorError
from projector.statefiles import write_atomically

logger = logging.getLogger(__name__)

FORMAT = 1


@dataclass(frozen=True)
class ShardCheckpoint:
    """One shard: ``sequence_number`` applied (None: nothing yet); ``finished``: read to its end."""

    sequence_number: str | None = None
    finished: bool = False
    parent_shard_id: str | None = None
    updated_at: str | None = None
    note: str | None = None

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"sequence_number": self.sequence_number, "finished": self.finished}
        if self.parent_shard_id:
            data["parent_shard_id"] = self.parent_shard_id
        if self.note:
            data["note"] = self.note
        data["updated_at"] = self.updated_at
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ShardCheckpoint:
        return cls(
            sequence_number=data.get("sequence_number"),
            finished=bool(data.get("finished", False)),
            parent_shard_id=data.get("parent_shard_id"),
            updated_at=data.get("updated_at"),
            note=data.get("note"),
        )


class StreamCheckpointError(ProjectorError):
    """``projector run``'s shard positions exist but cannot be read: never a silent restart."""


class CheckpointStore:
    """The checkpoint file of one table; safe to share between the shard consumers' threads."""

    def __init__(self, path: Path, table: str) -> None:
        self.path = path
        self.table = table
        self._lock = threading.Lock()
        self._streams: dict[str, dict[str, ShardCheckpoint]] = self._load()

    @classmethod
    def for_table(cls, state_dir: str | Path, table: str) -> CheckpointStore:
        return cls(Path(state_dir) / "checkpoints" / f"{table}.json", table)

    # reading ---------------------------------------------------------------------------------------
    def shards(self, stream_arn: str) -> dict[str, ShardCheckpoint]:
        """A copy of every shard checkpoint of the stream (empty for a stream never read)."""
        with self._lock:
            return dict(self._streams.get(stream_arn, {}))

    def get(self, stream_arn: str, shard_id: str) -> ShardCheckpoint | None:
        with self._lock:
            return self._streams.get(stream_arn, {}).get(shard_id)

    def finished(self, stream_arn: str) -> set[str]:
        with self._lock:
            return {shard for shard, point in self._streams.get(stream_arn, {}).items() if point.finished}

    # writing ---------------------------------------------------------------------------------------
    def advance(
        self, stream_arn: str, shard_id: str, sequence_number: str, parent_shard_id: str | None = None
    ) -> None:
        """Record that ``sequence_number`` and everything before it in the shard has been applied."""
        self._update(
            stream_arn,
            shard_id,
            sequence_number=sequence_number,
            finished=False,
            parent_shard_id=parent_shard_id,
        )

    def finish(
        self, stream_arn: str, shard_id: str, parent_shard_id: str | None = None, note: str | None = None
    ) -> None:
        """Record that the (closed) shard has been read and applied to its end: its children may start."""
        self._update(stream_arn, shard_id, finished=True, parent_shard_id=parent_shard_id, note=note)

    def forget(self, stream_arn: str, shard_ids: set[str]) -> None:
        """Drop shards the stream no longer describes (trimmed after 24 h), keeping the file small."""
        with self._lock:
            shards = self._streams.get(stream_arn, {})
            gone = shard_ids & shards.keys()
            if not gone:
                return
            for shard_id in gone:
                del shards[shard_id]
            self._save()

    def _update(self, stream_arn: str, shard_id: str, **changes: Any) -> None:
        with self._lock:
            shards = self._streams.setdefault(stream_arn, {})
            current = shards.get(shard_id, ShardCheckpoint())
            sequence_number = changes.get("sequence_number") or current.sequence_number
            if (
                current.sequence_number
                and sequence_number
                and _older(sequence_number, current.sequence_number)
            ):
                logger.warning(
                    "checkpoint of %s would move back from %s to %s; kept",
                    shard_id,
                    current.sequence_number,
                    sequence_number,
                )
                sequence_number = current.sequence_number
            shards[shard_id] = ShardCheckpoint(
                sequence_number=sequence_number,
                finished=changes.get("finished", current.finished),
                parent_shard_id=changes.get("parent_shard_id") or current.parent_shard_id,
                updated_at=datetime.now(UTC).isoformat(timespec="milliseconds"),
                note=changes.get("note") or current.note,
            )
            self._save()

    # file ------------------------------------------------------------------------------------------
    def _load(self) -> dict[str, dict[str, ShardCheckpoint]]:
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return {}
        try:
            data = json.loads(text)
            if data.get("format") != FORMAT:
                raise ValueError(f"unknown format {data.get('format')!r}")
            return {
                arn: {shard: ShardCheckpoint.from_json(point) for shard, point in stream["shards"].items()}
                for arn, stream in data.get("streams", {}).items()
            }
        except (ValueError, KeyError, TypeError, AttributeError) as error:
            raise StreamCheckpointError(
                f"cannot read checkpoints {self.path}: {error}; move it aside to start over"
            ) from None

    def _save(self) -> None:
        document = {
            "format": FORMAT,
            "table": self.table,
            "streams": {
                arn: {"shards": {shard: point.to_json() for shard, point in sorted(shards.items())}}
                for arn, shards in self._streams.items()
            },
        }
        write_atomically(self.path, json.dumps(document, indent=1, sort_keys=False) + "\n")


def _older(candidate: str, current: str) -> bool:
    """Sequence numbers are decimal strings of varying length; compare them as numbers."""
    if candidate.isdigit() and current.isdigit():
        return int(candidate) < int(current)
    return False
