"""Process plumbing shared by every local server: pid files, ports, spawning, waiting, stopping.

A server that `start` launched gets a pid file under `.services/`; it is the leader of its own
process group, so `stop` can end it and its children (OpenSearch runs under setpriv and a shell
script) without touching anything it did not start.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import re
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from devservers import paths

logger = logging.getLogger(__name__)

LOCAL_HOST = "127.0.0.1"


class ServiceError(RuntimeError):
    """A failure to report as one clear line (no traceback) to whoever runs `scripts/services`."""


@dataclass(frozen=True)
class Listener:
    """One listening TCP socket as `ss` reports it."""

    address: str
    port: int
    pids: tuple[int, ...]
    process: str


_SS_USERS = re.compile(r'\("([^"]*)",pid=(\d+)')


def listeners() -> list[Listener]:
    """Every listening TCP socket on this machine (`ss -ltnpH`); empty when `ss` is missing."""
    ss = shutil.which("ss")
    if ss is None:
        return []
    out = subprocess.run([ss, "-ltnpH"], capture_output=True, text=True, check=False).stdout
    result: list[Listener] = []
    for line in out.splitlines():
        fields = line.split()
        if len(fields) < 4:
            continue
        local = fields[3]
        address, _, port_text = local.rpartition(":")
        if not port_text.isdigit():
            continue
        users = _SS_USERS.findall(line)
        result.append(
            Listener(
                address=address.strip("[]"),
                port=int(port_text),
                pids=tuple(int(pid) for _, pid in users),
                process=users[0][0] if users else "",
            )
        )
    return result


def listeners_on(port: int) -> list[Listener]:
    """The sockets listening on PORT, whatever their address."""
    return [item for item in listeners() if item.port == port]


def port_open(port: int, host: str = LOCAL_HOST, timeout: float = 0.5) -> bool:
    """True when something accepts TCP connections on HOST:PORT."""
    with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=timeout):
        return True
    return False


def http_get(url: str, timeout: float = 2.0) -> tuple[int, bytes] | None:
    """GET URL; (status, body) for any HTTP answer, None when nothing answers."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()
    except (OSError, ValueError):
        return None


def pid_alive(pid: int) -> bool:
    """True when PID exists and is not a zombie."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat.rpartition(")")[2].split()[0] != "Z"


def cmdline(pid: int) -> str:
    """The command line of PID, space-joined ('' when unknown)."""
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return ""
    return raw.replace(b"\0", b" ").decode(errors="replace").strip()


def in_group(pid: int, leader: int) -> bool:
    """True when PID is LEADER or belongs to LEADER's process group."""
    if pid == leader:
        return True
    try:
        return os.getpgid(pid) == leader
    except OSError:
        return False


def read_pid(name: str) -> int | None:
    """The pid saved by `start` for NAME, or None."""
    try:
        text = paths.pid_file(name).read_text().strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None


def write_pid(name: str, pid: int) -> None:
    """Remember that `start` launched NAME as PID."""
    path = paths.pid_file(name)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"{pid}\n")


def remove_pid(name: str) -> None:
    """Forget NAME's pid file."""
    with contextlib.suppress(FileNotFoundError):
        paths.pid_file(name).unlink()


def owned_pid(name: str, marker: str) -> int | None:
    """The live pid that `start` saved for NAME, if its command line still carries MARKER.

    A stale pid file (process gone, or the pid reused by something else) is removed.
    """
    pid = read_pid(name)
    if pid is None:
        return None
    if pid_alive(pid) and marker in cmdline(pid):
        return pid
    logger.debug("removing stale pid file of %s (pid %s)", name, pid)
    remove_pid(name)
    return None


@contextlib.contextmanager
def start_lock(name: str) -> Iterator[None]:
    """Serialise concurrent starts of NAME (two pytest runs, or a test and `make services-start`)."""
    path = paths.services_dir() / f"{name}.lock"
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def check_port_free(name: str, port: int, own_pid: int | None) -> None:
    """Raise a clear error when PORT is taken by a process that is not our NAME server."""
    taken = listeners_on(port)
    if not taken and not port_open(port):
        return
    foreign = [
        item for item in taken if not (own_pid is not None and any(in_group(p, own_pid) for p in item.pids))
    ]
    if not foreign and taken:
        return
    who = (
        ", ".join(f"pid {pid} ({item.process or cmdline(pid)[:60]})" for item in foreign for pid in item.pids)
        or "an unknown process"
    )
    raise ServiceError(
        f"{name}: port {port} is already taken by {who}, not started by scripts/services; "
        f"stop it or free the port"
    )


def spawn(
    name: str,
    command: Sequence[str],
    *,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    log: Path | None = None,
) -> subprocess.Popen[bytes]:
    """Start COMMAND detached in its own session, output appended to NAME's log; save its pid."""
    log = log or paths.log_file(name)
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as out:
        out.write(f"\n--- {time.strftime('%Y-%m-%dT%H:%M:%S')} starting: {' '.join(command)}\n".encode())
        out.flush()
        process = subprocess.Popen(
            list(command),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            env=dict(env) if env is not None else None,
            cwd=str(cwd) if cwd else None,
            start_new_session=True,
        )
    write_pid(name, process.pid)
    logger.info("%s: started pid %d", name, process.pid)
    return process


def log_tail(path: Path, lines: int = 15) -> str:
    """The last LINES lines of PATH (for error messages)."""
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


def wait_until(
    name: str,
    ready: Callable[[], bool],
    *,
    timeout: float,
    pid: int | None,
    log: Path,
    interval: float = 0.25,
) -> None:
    """Poll READY until true; raise a clear error on timeout or when PID dies first."""
    deadline = time.monotonic() + timeout
    while True:
        if ready():
            return
        if pid is not None and not pid_alive(pid):
            raise ServiceError(f"{name}: process {pid} exited before answering; see {log}\n{log_tail(log)}")
        if time.monotonic() >= deadline:
            raise ServiceError(f"{name}: not answering after {timeout:.0f} s; see {log}")
        time.sleep(interval)


def stop_group(pid: int, *, grace: float = 5.0) -> None:
    """SIGTERM PID's process group, wait up to GRACE seconds, then SIGKILL whatever is left."""
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 5.0)):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, sig)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, sig)
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            with contextlib.suppress(ChildProcessError, OSError):
                os.waitpid(pid, os.WNOHANG)  # reap it when it is our own child
            if not pid_alive(pid) and not _group_alive(pid):
                return
            time.sleep(0.1)
    logger.warning("process group %d still alive after SIGKILL", pid)


def _group_alive(pgid: int) -> bool:
    """True when any live process still belongs to process group PGID."""
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                if os.getpgid(int(entry.name)) == pgid and pid_alive(int(entry.name)):
                    return True
    return False
