"""Where the local servers' downloads, installs, data, logs and pid files live.

Downloads and tools are cached under the project's ignored `.cache/` so a second start fetches
nothing; runtime state (pid files, logs, data) sits under the ignored `.services/`.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

logger = logging.getLogger(__name__)

#: The repository root (the folder holding `devservers/`).
REPO_ROOT: Path = Path(__file__).resolve().parent.parent

#: A world-traversable place for OpenSearch when the project folder is not (e.g. under /root).
FALLBACK_ROOT: Path = Path("/var/tmp/projector-services")


def repo_root() -> Path:
    """The project root; `PROJECTOR_REPO_ROOT` overrides it (tests of the tooling itself)."""
    override = os.environ.get("PROJECTOR_REPO_ROOT")
    return Path(override).resolve() if override else REPO_ROOT


def cache_dir() -> Path:
    """Downloads and installed tools, kept between runs (ignored by git)."""
    return repo_root() / ".cache"


def cache_bin_dir() -> Path:
    """Where `go install` puts the Go tools (RIE, Toxiproxy)."""
    return cache_dir() / "bin"


def downloads_dir() -> Path:
    """Downloaded archives (the OpenSearch zip)."""
    return cache_dir() / "downloads"


def services_dir() -> Path:
    """Runtime state of started servers: pid files, logs, data (ignored by git)."""
    return repo_root() / ".services"


def pid_file(name: str) -> Path:
    """The pid file `start` writes for the server NAME, read by `stop` and `status`."""
    return services_dir() / f"{name}.pid"


def log_file(name: str) -> Path:
    """The stdout/stderr log of the server NAME."""
    return services_dir() / name / f"{name}.out"
