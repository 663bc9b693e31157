"""Finding the Java and Maven that OpenSearch needs, with one clear line when they are missing.

The OpenSearch integ-test zip carries no JDK; 2.19.x runs on Java 17 to 23 (3.x would need 21+).
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import subprocess
from pathlib import Path

from devservers.process import ServiceError

logger = logging.getLogger(__name__)

MIN_JAVA = 17
#: Newest Java that OpenSearch 2.19.x is known to run on (it bundles 23 in its own distribution).
MAX_TESTED_JAVA = 23

_VERSION = re.compile(r'version "(\d+)(?:\.(\d+))?')


def java_major(java: Path) -> int | None:
    """The major version of the `java` binary at JAVA, or None when it does not run."""
    try:
        out = subprocess.run(
            [str(java), "-version"], capture_output=True, text=True, timeout=30, check=False
        ).stderr
    except (OSError, subprocess.SubprocessError):
        return None
    match = _VERSION.search(out)
    if not match:
        return None
    major = int(match.group(1))
    return int(match.group(2) or 0) if major == 1 else major


def _candidates() -> list[Path]:
    homes: list[Path] = []
    if os.environ.get("JAVA_HOME"):
        homes.append(Path(os.environ["JAVA_HOME"]))
    on_path = shutil.which("java")
    if on_path:
        homes.append(Path(on_path).resolve().parent.parent)
    jvm = Path("/usr/lib/jvm")
    if jvm.is_dir():
        homes.extend(sorted(p for p in jvm.iterdir() if p.is_dir() and not p.is_symlink()))
    unique: list[Path] = []
    for home in homes:
        if home not in unique:
            unique.append(home)
    return unique


def find_java_home() -> Path:
    """A Java home for OpenSearch: JAVA_HOME, else the `java` on PATH, else /usr/lib/jvm/*.

    Prefers a version in the tested range 17..23; a newer one is used with a warning.
    """
    newer: list[tuple[Path, int]] = []
    for home in _candidates():
        java = home / "bin" / "java"
        if not java.is_file():
            continue
        major = java_major(java)
        if major is None or major < MIN_JAVA:
            continue
        if major <= MAX_TESTED_JAVA:
            return home
        newer.append((home, major))
    if newer:
        home, major = newer[0]
        logger.warning(
            "using Java %d at %s (OpenSearch 2.19 is tested up to %d)", major, home, MAX_TESTED_JAVA
        )
        return home
    raise ServiceError(
        f"opensearch: needs Java {MIN_JAVA} or newer and none was found "
        "(set JAVA_HOME, or apt-get install openjdk-17-jre-headless)"
    )


def find_maven() -> str:
    """The `mvn` binary that fetches OpenSearch from Maven Central."""
    mvn = shutil.which("mvn")
    if mvn is None:
        raise ServiceError(
            "opensearch: Maven (mvn) is needed to fetch OpenSearch from Maven Central "
            "and was not found (apt-get install maven)"
        )
    return mvn
