"""`projector run` subprocesses: started, read (``--json`` batch lines), killed with SIGKILL, restarted.

Only processes started here are ever signalled, by their own pid.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

logger = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parent.parent
PROJECTOR = [sys.executable, "-m", "projector.cli.main"]


@dataclass(slots=True)
class RunnerStats:
    """What the ``--json`` batch lines of every incarnation said, added up."""

    batches: int = 0
    records: int = 0
    applied: int = 0
    outcomes: Counter[str] = field(default_factory=Counter)
    starts: int = 0
    kills: int = 0
    exits: list[int] = field(default_factory=list)
    crash_reasons: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, line: dict) -> None:
        with self.lock:
            self.batches += 1
            self.records += int(line.get("records") or 0)
            self.applied += int(line.get("applied") or 0)
            self.outcomes[str(line.get("outcome"))] += 1

    def to_json(self) -> dict:
        with self.lock:
            return {
                "batches": self.batches,
                "records": self.records,
                "applied": self.applied,
                "outcomes": dict(self.outcomes),
                "starts": self.starts,
                "kills": self.kills,
                "abnormal_exits": [code for code in self.exits if code not in (0, -9)],
                "crash_reasons": list(self.crash_reasons),
            }


def last_error(log: Path) -> str:
    """The last ``error:`` line a projector command wrote to ``log`` (else its last line)."""
    try:
        with log.open("rb") as handle:
            handle.seek(max(0, log.stat().st_size - 16384))
            lines = [
                line.strip() for line in handle.read().decode(errors="replace").splitlines() if line.strip()
            ]
    except OSError:
        return ""
    errors = [line for line in lines if line.startswith("error:")]
    return (errors or lines or [""])[-1][:500]


class RunnerProcess:
    """One named runner (main, shadow, drain): at most one live incarnation at a time."""

    def __init__(self, name: str, env: dict[str, str], log_dir: Path) -> None:
        self.name = name
        self.env = env
        self.log_path = log_dir / f"runner-{name}.log"
        self.stats = RunnerStats()
        self._process: subprocess.Popen[bytes] | None = None
        self._reader: threading.Thread | None = None

    @property
    def alive(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def start(self, args: list[str], env: dict[str, str] | None = None) -> None:
        """Start ``projector run --json ARGS`` (the previous incarnation must be gone)."""
        if self.alive:
            raise RuntimeError(f"runner {self.name} is already running")
        command = [*PROJECTOR, "run", "--json", *args]
        with self.log_path.open("ab") as log:
            log.write(f"\n--- {time.strftime('%H:%M:%S')} {' '.join(command[2:])}\n".encode())
            log.flush()
            self._process = subprocess.Popen(
                command,
                cwd=ROOT,
                env=env or self.env,
                stdout=subprocess.PIPE,
                stderr=log,
                stdin=subprocess.DEVNULL,
            )
        self.stats.starts += 1
        self._reader = threading.Thread(
            target=self._read, args=(self._process,), name=f"read-{self.name}", daemon=True
        )
        self._reader.start()
        logger.info("runner %s: started pid %d (%s)", self.name, self._process.pid, " ".join(args))

    def kill(self) -> bool:
        """SIGKILL the running incarnation (no clean stop, batch in flight lost); True if one was killed."""
        process = self._process
        if process is None or process.poll() is not None:
            return False
        os.kill(process.pid, signal.SIGKILL)
        self._reap(process)
        self.stats.kills += 1
        logger.info("runner %s: killed pid %d", self.name, process.pid)
        return True

    def stop(self, grace_s: float = 30.0) -> int | None:
        """SIGTERM (finish the batch in flight), SIGKILL after ``grace_s``; the exit code."""
        process = self._process
        if process is None:
            return None
        if process.poll() is None:
            os.kill(process.pid, signal.SIGTERM)
            try:
                process.wait(grace_s)
            except subprocess.TimeoutExpired:
                os.kill(process.pid, signal.SIGKILL)
                self.stats.kills += 1
        return self._reap(process)

    def wait(self, timeout_s: float) -> int | None:
        """Wait for the incarnation to end by itself (``--until-idle``); None on timeout."""
        process = self._process
        if process is None:
            return None
        try:
            process.wait(timeout_s)
        except subprocess.TimeoutExpired:
            return None
        return self._reap(process)

    def _reap(self, process: subprocess.Popen[bytes]) -> int:
        code = process.wait()
        if self._reader is not None:
            self._reader.join(timeout=10)
        if self._process is process:
            self.stats.exits.append(code)
            if code not in (0, -9, -15):
                self.stats.crash_reasons.append(last_error(self.log_path))
            self._process = None
        return code

    def _read(self, process: subprocess.Popen[bytes]) -> None:
        assert process.stdout is not None
        with self.log_path.with_suffix(".jsonl").open("ab") as keep:
            for raw in process.stdout:
                keep.write(raw)
                keep.flush()
                try:
                    line = json.loads(raw)
                except ValueError:
                    continue
                if isinstance(line, dict) and "outcome" in line:
                    self.stats.add(line)
        process.stdout.close()
