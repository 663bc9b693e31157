"""`go install` of the Go-built test tools (Lambda Runtime Interface Emulator, Toxiproxy) into
`.cache/bin`, once per pinned version (a stamp file beside each binary records it).
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from devservers import paths
from devservers.process import ServiceError

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class GoTool:
    """One pinned `go install` target and the name its binary gets in `.cache/bin`."""

    package: str
    version: str
    built_name: str
    binary_name: str


RIE = GoTool(
    package="github.com/aws/aws-lambda-runtime-interface-emulator/cmd/aws-lambda-rie",
    version="v0.0.0-20261030222936-bef5c4ba774d",
    built_name="aws-lambda-rie",
    binary_name="aws-lambda-rie",
)
TOXIPROXY = GoTool(
    package="github.com/Shopify/toxiproxy/v2/cmd/server",
    version="v2.5.0",
    built_name="server",
    binary_name="toxiproxy-server",
)


def find_go() -> str:
    """The `go` binary (PATH, then /usr/local/go/bin)."""
    found = shutil.which("go") or ("/usr/local/go/bin/go" if Path("/usr/local/go/bin/go").is_file() else None)
    if found is None:
        raise ServiceError("Go is needed to install the test tools (go install) and was not found")
    return found


def ensure(tool: GoTool) -> Path:
    """The tool's binary in `.cache/bin`, installed with `go install` unless this version is there."""
    target = paths.cache_bin_dir() / tool.binary_name
    stamp = target.with_name(tool.binary_name + ".version")
    wanted = f"{tool.package}@{tool.version}"
    if _installed(target, stamp, wanted):
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with _install_lock(target.parent / f".{tool.binary_name}.lock"):
        if _installed(target, stamp, wanted):  # another process installed it meanwhile
            return target
        _go_install(tool, target, wanted)
        stamp.write_text(wanted + "\n")
    return target


def _installed(target: Path, stamp: Path, wanted: str) -> bool:
    return target.is_file() and stamp.is_file() and stamp.read_text().strip() == wanted


@contextlib.contextmanager
def _install_lock(path: Path) -> Iterator[None]:
    """One `go install` per tool at a time across processes (parallel test runs)."""
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _go_install(tool: GoTool, target: Path, wanted: str) -> None:
    logger.info("go install %s (once; cached in %s)", wanted, target.parent)
    with tempfile.TemporaryDirectory(dir=target.parent) as gobin:
        env = dict(os.environ, GOBIN=gobin)
        result = subprocess.run(
            [find_go(), "install", wanted], env=env, capture_output=True, text=True, check=False
        )
        built = Path(gobin) / tool.built_name
        if result.returncode != 0 or not built.is_file():
            detail = " | ".join((result.stdout + result.stderr).strip().splitlines()[-3:])
            raise ServiceError(f"go install {wanted} failed: {detail}")
        built.replace(target)


def ensure_rie() -> Path:
    """The Lambda Runtime Interface Emulator binary (`aws-lambda-rie`)."""
    return ensure(RIE)


def ensure_toxiproxy() -> Path:
    """The Toxiproxy server binary (installed as `toxiproxy-server`)."""
    return ensure(TOXIPROXY)
