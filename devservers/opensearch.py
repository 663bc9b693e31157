"""OpenSearch 2.19.6 for local tests: fetched once from Maven Central, run on 127.0.0.1:9200.

OpenSearch refuses to run as root and CI runs as root, so as root it runs as `nobody` through
`setpriv`; that user must be able to traverse every parent folder, else install, data and logs
move to /var/tmp/projector-services/ (world-traversable) with a message saying so.
"""

from __future__ import annotations

import grp
import json
import logging
import os
import shutil
import stat
import subprocess
import zipfile
from dataclasses import dataclass
from pathlib import Path

from devservers import jvm, paths, process
from devservers.process import ServiceError
from devservers.service import Service

logger = logging.getLogger(__name__)

VERSION = "2.19.6"
ARTIFACT = f"org.opensearch.distribution.integ-test-zip:opensearch:{VERSION}:zip"
HTTP_PORT = 9200
HEAP = "512m"
RUN_AS_USER = "nobody"


@dataclass(frozen=True)
class Layout:
    """Where the unpacked install, the data and the logs go."""

    install_root: Path
    data: Path
    logs: Path
    fallback: bool

    @property
    def home(self) -> Path:
        """The unpacked distribution (OPENSEARCH_HOME)."""
        return self.install_root / f"opensearch-{VERSION}"


def _run_group() -> str:
    """The group for the unprivileged user: `nogroup` (Debian) or `nobody` (Red Hat)."""
    for name in ("nogroup", "nobody"):
        try:
            grp.getgrnam(name)
        except KeyError:
            continue
        return name
    raise ServiceError("opensearch: running as root needs a 'nogroup' or 'nobody' group to drop to")


def _as_nobody() -> list[str]:
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        raise ServiceError("opensearch: running as root needs setpriv (util-linux) to drop to 'nobody'")
    return [setpriv, f"--reuid={RUN_AS_USER}", f"--regid={_run_group()}", "--clear-groups"]


def _traversable_by_nobody(path: Path) -> bool:
    """True when the unprivileged user can reach PATH (every parent must be searchable)."""
    result = subprocess.run([*_as_nobody(), "test", "-x", str(path)], capture_output=True, check=False)
    return result.returncode == 0


def layout(name: str = "opensearch") -> Layout:
    """Pick the project's folders, or the world-traversable fallback when running as root needs it.

    NAME separates the data and logs of a private instance from the shared one's.
    """
    root = paths.repo_root()
    local = Layout(
        install_root=paths.cache_dir() / "opensearch",
        data=paths.services_dir() / name / "data",
        logs=paths.services_dir() / name / "logs",
        fallback=False,
    )
    if os.geteuid() != 0 or _traversable_by_nobody(root):
        return local
    base = paths.FALLBACK_ROOT
    return Layout(
        install_root=base / "opensearch", data=base / name / "data", logs=base / name / "logs", fallback=True
    )


def download() -> Path:
    """The OpenSearch zip, fetched with Maven into `.cache/downloads/` unless already there."""
    target = paths.downloads_dir() / f"opensearch-{VERSION}.zip"
    if target.is_file():
        return target
    mvn = jvm.find_maven()
    target.parent.mkdir(parents=True, exist_ok=True)
    logger.info("opensearch: downloading %s with Maven (once; cached in %s)", ARTIFACT, target.parent)
    result = subprocess.run(
        [mvn, "-q", "-B", "dependency:copy", f"-Dartifact={ARTIFACT}", f"-DoutputDirectory={target.parent}"],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0 or not target.is_file():
        detail = (result.stdout + result.stderr).strip().splitlines()[-3:]
        raise ServiceError(f"opensearch: Maven could not fetch {ARTIFACT}: {' | '.join(detail)}")
    return target


def _extract(archive: Path, dest: Path) -> None:
    """Unzip keeping the executable bits (Python's zipfile drops them)."""
    with zipfile.ZipFile(archive) as zipped:
        for info in zipped.infolist():
            extracted = Path(zipped.extract(info, dest))
            mode = (info.external_attr >> 16) & 0o777
            if mode and not info.is_dir():
                extracted.chmod(mode)


def install(where: Layout) -> Path:
    """Unpack the cached zip into WHERE.install_root once; returns OPENSEARCH_HOME."""
    if (where.home / "bin" / "opensearch").is_file():
        return where.home
    archive = download()
    where.install_root.mkdir(parents=True, exist_ok=True)
    staging = where.install_root / f".unpacking-{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    logger.info("opensearch: unpacking %s into %s", archive.name, where.install_root)
    _extract(archive, staging)
    unpacked = staging / f"opensearch-{VERSION}"
    if not (unpacked / "bin" / "opensearch").is_file():
        raise ServiceError(f"opensearch: {archive} does not hold opensearch-{VERSION}/bin/opensearch")
    unpacked.rename(where.home)
    shutil.rmtree(staging, ignore_errors=True)
    return where.home


def _open_up(folder: Path, stop_at: Path) -> None:
    """Add r-x for all to FOLDER and its parents below STOP_AT (ours), so `nobody` can reach it."""
    current = folder
    while current != stop_at and current.parent != current:
        current.chmod(stat.S_IMODE(current.stat().st_mode) | 0o755)
        current = current.parent


def _chown_tree(path: Path, user: str, group: str) -> None:
    subprocess.run(["chown", "-R", f"{user}:{group}", str(path)], check=True)


class OpenSearch(Service):
    """OpenSearch 2.19.6 on 127.0.0.1:9200 (no security plugin: plain HTTP, no password)."""

    name = "opensearch"
    port = HTTP_PORT
    marker = "opensearch"
    start_timeout = 90.0

    def answering(self) -> bool:
        answer = process.http_get(self.url + "/", timeout=2.0)
        if answer is None or answer[0] != 200:
            return False
        try:
            body = json.loads(answer[1])
        except ValueError:
            return False
        return isinstance(body, dict) and "version" in body

    def note(self) -> str:
        return f"data in {paths.FALLBACK_ROOT}" if layout(self.name).fallback else ""

    def prepare(self) -> None:
        self._java_home = jvm.find_java_home()
        self._layout = layout(self.name)
        if self._layout.fallback:
            logger.warning(
                "opensearch: %s is not traversable by '%s' (OpenSearch refuses root); "
                "install, data and logs go under %s instead",
                paths.repo_root(),
                RUN_AS_USER,
                paths.FALLBACK_ROOT,
            )
        install(self._layout)
        for folder in (self._layout.data, self._layout.logs):
            folder.mkdir(parents=True, exist_ok=True)

    def launch(self) -> subprocess.Popen[bytes]:
        where = self._layout
        command: list[str] = []
        if os.geteuid() == 0:
            group = _run_group()
            for folder in (where.home, where.data, where.logs):
                _chown_tree(folder, RUN_AS_USER, group)
            stop_at = paths.FALLBACK_ROOT.parent if where.fallback else paths.repo_root()
            for folder in (where.install_root, where.data, where.logs):
                _open_up(folder, stop_at)
            command += _as_nobody()
        command += [
            str(where.home / "bin" / "opensearch"),
            "-Ediscovery.type=single-node",
            f"-Ehttp.host={process.LOCAL_HOST}",
            f"-Etransport.host={process.LOCAL_HOST}",
            f"-Ehttp.port={self.port}",
            f"-Epath.data={where.data}",
            f"-Epath.logs={where.logs}",
            f"-Ecluster.name=projector-{self.name}",
            f"-Enode.name=projector-{self.name}",
            "-Eaction.auto_create_index=true",
            # A nearly full disk must not flip test indexes to read-only.
            "-Ecluster.routing.allocation.disk.threshold_enabled=false",
        ]
        env = dict(os.environ)
        env["OPENSEARCH_JAVA_HOME"] = str(self._java_home)
        env["OPENSEARCH_JAVA_OPTS"] = f"-Xms{HEAP} -Xmx{HEAP}"
        env.pop("OPENSEARCH_HOME", None)
        # cwd = the install: jvm.options writes gc.log and heap dumps relative to it.
        return process.spawn(self.name, command, env=env, cwd=where.home, log=self.log_path())

    def _wait(self, pid: int) -> None:
        super()._wait(pid)
        health = process.http_get(
            self.url + "/_cluster/health?wait_for_status=yellow&timeout=30s", timeout=35.0
        )
        if health is None or health[0] != 200:
            raise ServiceError(f"opensearch: cluster did not turn yellow; see {self.log_path()}")
