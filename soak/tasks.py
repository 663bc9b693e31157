"""The soak's side jobs: a backfill in the background, late redrives, an OpenSearch restart, checkpoint
snapshots (for a second runner that replays from an older position), and reading the replay log."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import signal
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from soak.env import projector
from soak.runners import PROJECTOR, ROOT, last_error

logger = logging.getLogger(__name__)


@dataclass(slots=True)
class BackfillRun:
    """One ``projector backfill --segments N`` (resumed after a failure while time allows)."""

    env: dict[str, str]
    segments: int
    log: Path
    attempts: list[dict[str, Any]] = field(default_factory=list)
    _process: subprocess.Popen[str] | None = None
    _thread: threading.Thread | None = None
    _stop: threading.Event = field(default_factory=threading.Event)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="backfill", daemon=True)
        self._thread.start()

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def finish(self, timeout_s: float) -> None:
        """Let it end by itself within ``timeout_s``, else stop it (SIGTERM: exit 130, resumable)."""
        if self._thread is None:
            return
        self._thread.join(timeout_s)
        if self._thread.is_alive():
            self._stop.set()
            process = self._process
            if process is not None and process.poll() is None:
                os.kill(process.pid, signal.SIGTERM)
            self._thread.join(60)

    def _checkpointed(self) -> bool:
        folder = Path(self.env["PROJECTOR_STATE_DIR"]) / "backfill"
        return folder.is_dir() and any(folder.glob("*.json"))

    @property
    def finished(self) -> bool:
        return any(attempt.get("status") == "finished" for attempt in self.attempts)

    def _run(self) -> None:
        for attempt in range(6):
            if self._stop.is_set():
                return
            args = ["backfill", "--segments", str(self.segments), "--json", "--no-progress"]
            if self._checkpointed():
                args.append("--resume")
            started = time.monotonic()
            with self.log.open("a", encoding="utf-8") as log:
                log.write(f"\n--- projector {' '.join(args)}\n")
                log.flush()
                self._process = subprocess.Popen(
                    [*PROJECTOR, *args], cwd=ROOT, env=self.env, text=True, stdout=subprocess.PIPE, stderr=log
                )
                out, _ = self._process.communicate()
            data: dict[str, Any] = {}
            with contextlib.suppress(ValueError):
                data = json.loads(out) if out.strip() else {}
            self.attempts.append(
                {
                    "error": last_error(self.log) if self._process.returncode else None,
                    "exit": self._process.returncode,
                    "status": data.get("status"),
                    "items": data.get("items_scanned"),
                    "seconds": round(time.monotonic() - started, 1),
                }
            )
            logger.info(
                "backfill attempt %d: exit %d, %s", attempt + 1, self._process.returncode, data.get("status")
            )
            if self._process.returncode == 0:
                return
            time.sleep(1.0)


def redrive(env: dict[str, str], log: Path, timeout_s: float = 300.0) -> dict[str, Any]:
    """``projector dead-letters redrive --json``: how many were redriven, how many still fail."""
    result = projector(["dead-letters", "redrive", "--json"], env, timeout_s, log)
    data = result.data if isinstance(result.data, dict) else {}
    return {
        "exit": result.code,
        "redriven": int(data.get("redriven") or 0),
        "failed": int(data.get("failed") or 0),
        "error": None if data else result.stderr[-300:],
    }


def dead_letters(env: dict[str, str], log: Path, include_redriven: bool) -> list[dict[str, Any]]:
    args = ["dead-letters", "list", "--json", *(["--all"] if include_redriven else [])]
    result = projector(args, env, 120.0, log)
    data = result.data if isinstance(result.data, dict) else {}
    return [
        {
            "id": letter.get("id"),
            "reason": letter.get("reason"),
            "projection": letter.get("projection"),
            "sequence_number": letter.get("sequence_number"),
            "error": str(letter.get("error"))[:300],
        }
        for letter in data.get("letters") or []
    ]


def restart_opensearch() -> dict[str, Any]:
    """Stop and start the local OpenSearch, only when scripts/services started it (it owns the pid)."""
    from devservers import registry

    service = registry.get("opensearch")
    if service.owned_pid() is None:
        return {"restarted": False, "note": "OpenSearch was not started by scripts/services: restart skipped"}
    began = time.monotonic()
    try:
        service.stop()
    finally:
        service.start()  # whatever happened, leave OpenSearch running
    return {"restarted": True, "down_s": round(time.monotonic() - began, 1)}


def ensure_opensearch() -> None:
    from devservers import registry

    registry.get("opensearch").ensure()


class CheckpointSnapshots:
    """Copies of the main runner's checkpoint file over time; a shadow runner starts from an old one."""

    def __init__(self, state_dir: Path, table: str, folder: Path) -> None:
        self.source = state_dir / "checkpoints" / f"{table}.json"
        self.folder = folder
        self.taken: list[Path] = []

    def take(self) -> None:
        if not self.source.is_file():
            return
        self.folder.mkdir(parents=True, exist_ok=True)
        target = self.folder / f"{len(self.taken):04d}.json"
        try:
            shutil.copyfile(self.source, target)
        except OSError:
            return
        self.taken.append(target)

    def shadow_state(self, state_dir: Path, table: str, pick: int | None) -> str:
        """Seed ``state_dir`` with snapshot ``pick`` (None: no checkpoint, trim horizon); what was used."""
        (state_dir / "checkpoints").mkdir(parents=True, exist_ok=True)
        if pick is None or not self.taken:
            return "trim-horizon"
        snapshot = self.taken[pick]
        shutil.copyfile(snapshot, state_dir / "checkpoints" / f"{table}.json")
        return f"checkpoint snapshot {snapshot.name}"


class PoisonLetters:
    """Which keys have a poison dead letter yet (the letter files mention the key), read incrementally."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._read: set[Path] = set()
        self._keys_text: list[str] = []
        self._lock = threading.Lock()

    def __call__(self, key: str) -> bool:
        with self._lock:
            for path in sorted(self.folder.glob("*/*.json")):
                if path in self._read:
                    continue
                try:
                    text = path.read_text(encoding="utf-8")
                except OSError:
                    continue  # moved to redriven/ meanwhile: seen next time
                self._read.add(path)
                if '"reason":"poison"' in text.replace(" ", ""):
                    self._keys_text.append(text)
            return any(f'"{key}"' in text for text in self._keys_text)


def read_replays(path: Path) -> dict[str, int]:
    """Re-deliveries logged by ``soak.replay``: batches and records per kind."""
    counts: dict[str, int] = {}
    if not path.is_file():
        return counts
    for raw in path.read_text(encoding="utf-8").splitlines():
        try:
            entry = json.loads(raw)
        except ValueError:
            continue
        kind = str(entry.get("kind"))
        counts[f"{kind}_batches"] = counts.get(f"{kind}_batches", 0) + 1
        counts[f"{kind}_records"] = counts.get(f"{kind}_records", 0) + int(entry.get("records") or 0)
    return counts
