"""The life cycle every local server shares: idempotent start, readiness wait, status, stop.

Each server (OpenSearch, moto, RIE, Toxiproxy) subclasses `Service` and only says how to prepare
(download/install), how to launch, and how to tell that it answers.
"""

from __future__ import annotations

import logging
import subprocess
from dataclasses import dataclass
from pathlib import Path

from devservers import paths, process
from devservers.process import ServiceError

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Status:
    """What `scripts/services status` prints for one server."""

    name: str
    url: str
    up: bool
    pid: int | None
    owned: bool
    note: str = ""

    def line(self) -> str:
        """One plain line: name, endpoint, up/down, pid."""
        state = "up" if self.up else "down"
        if self.pid is not None:
            who = f"pid {self.pid}"
        elif self.up:
            who = "pid ? (not started by scripts/services)"
        else:
            who = "-"
        note = f"  {self.note}" if self.note else ""
        return f"{self.name:<10} {self.url:<28} {state:<4} {who}{note}"

    def as_dict(self) -> dict[str, object]:
        """JSON form for `status --json`."""
        return {
            "name": self.name,
            "url": self.url,
            "up": self.up,
            "pid": self.pid,
            "owned": self.owned,
            "note": self.note,
        }


class Service:
    """One local server on 127.0.0.1, started at most once, remembered by a pid file."""

    name: str = ""
    port: int = 0
    #: A fragment of the launched command line that identifies our process (guards pid reuse).
    marker: str = ""
    start_timeout: float = 30.0

    def __init__(self, *, name: str | None = None, port: int | None = None) -> None:
        """NAME (pid file, log folder) and PORT default to the class's; override them for a
        private instance beside the shared one (tests of the tooling, benchmarks)."""
        if name is not None:
            self.name = name
        if port is not None:
            self.port = port

    @property
    def url(self) -> str:
        """The endpoint clients use."""
        return f"http://{process.LOCAL_HOST}:{self.port}"

    def log_path(self) -> Path:
        """Where the server's stdout/stderr go."""
        return paths.log_file(self.name)

    def answering(self) -> bool:
        """True when the server answers on its port (override for an HTTP check)."""
        return process.port_open(self.port)

    def recognised(self) -> bool:
        """True when what answers on the port is this kind of server (then `start` leaves it alone,
        whoever started it); override where the port alone does not tell."""
        return self.answering()

    def prepare(self) -> None:
        """Download, install or check prerequisites before launching (cached; may be slow once)."""

    def launch(self) -> subprocess.Popen[bytes]:
        """Start the server process (via `process.spawn`, which writes the pid file)."""
        raise NotImplementedError

    def note(self) -> str:
        """Extra words for `status` (e.g. where data lives)."""
        return ""

    def owned_pid(self) -> int | None:
        """The pid of the server we started, if it is still running."""
        return process.owned_pid(self.name, self.marker)

    def status(self) -> Status:
        """Up/down, pid and endpoint."""
        pid = self.owned_pid()
        return Status(self.name, self.url, self.answering(), pid, pid is not None, self.note())

    def start(self) -> Status:
        """Start the server unless ours already runs; wait until it answers. Idempotent."""
        with process.start_lock(self.name):
            pid = self.owned_pid()
            if pid is not None:
                if not self.answering():
                    logger.info("%s: pid %d is ours and still starting; waiting", self.name, pid)
                    self._wait(pid)
                logger.debug("%s: already running (pid %d)", self.name, pid)
                return self.status()
            if self.recognised():
                logger.debug(
                    "%s: already answering at %s, not started by scripts/services; left alone",
                    self.name,
                    self.url,
                )
                return self.status()
            process.check_port_free(self.name, self.port, None)
            self.prepare()
            child = self.launch()
            try:
                self._wait(child.pid)
            except (ServiceError, KeyboardInterrupt):
                process.stop_group(child.pid, grace=2.0)
                process.remove_pid(self.name)
                raise
            logger.info("%s: up at %s (pid %d)", self.name, self.url, child.pid)
            return self.status()

    def ensure(self) -> Status:
        """Make the server answer (fixtures): reuse one of the right kind, else start ours."""
        if self.recognised():
            return self.status()
        return self.start()

    def stop(self) -> bool:
        """Stop the server if `start` started it; True when something was stopped."""
        pid = self.owned_pid()
        if pid is None:
            process.remove_pid(self.name)
            return False
        process.stop_group(pid)
        process.remove_pid(self.name)
        logger.info("%s: stopped pid %d", self.name, pid)
        return True

    def _wait(self, pid: int) -> None:
        process.wait_until(
            self.name, self.answering, timeout=self.start_timeout, pid=pid, log=self.log_path()
        )
