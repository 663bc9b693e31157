"""The soak's own names (index prefix, tables, folders), its environments and its cleanup.

Two environments: *direct* (OpenSearch 127.0.0.1:9200, moto 127.0.0.1:5000) for setup, the final
drain, redrive and verify; *proxied* (the Toxiproxy listen addresses) for everything that runs under
faults. Every endpoint is on 127.0.0.1; anything else is refused.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import socket
import subprocess
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from soak.runners import PROJECTOR, ROOT

logger = logging.getLogger(__name__)

LOCAL_HOST = "127.0.0.1"
OPENSEARCH = f"http://{LOCAL_HOST}:9200"
MOTO = f"http://{LOCAL_HOST}:5000"
REGION = "us-east-1"


@dataclass(frozen=True, slots=True)
class SoakNames:
    token: str
    index_prefix: str
    source_table: str
    aggregates_table: str
    work_dir: Path

    @classmethod
    def fresh(cls, base: Path) -> SoakNames:
        token = uuid.uuid4().hex[:8]
        return cls(
            token, f"soak{token}-", f"soak-orders-{token}", f"soak-aggregates-{token}", base / f"soak-{token}"
        )

    @property
    def state_dir(self) -> Path:
        return self.work_dir / "state"

    @property
    def dead_letters_dir(self) -> Path:
        return self.work_dir / "dead-letters"

    @property
    def log_dir(self) -> Path:
        return self.work_dir / "logs"

    def environment(
        self,
        opensearch_url: str = OPENSEARCH,
        dynamodb_url: str = MOTO,
        state_dir: Path | None = None,
        **extra: str,
    ) -> dict[str, str]:
        """A process environment with the soak's PROJECTOR_* settings and dummy local credentials."""
        for url in (opensearch_url, dynamodb_url):
            if urlparse(url).hostname != LOCAL_HOST:
                raise ValueError(f"soak: refusing non-loopback endpoint {url!r}")
        env = {
            name: value for name, value in os.environ.items() if not name.startswith(("PROJECTOR_", "AWS_"))
        }
        env.update(
            {
                "PROJECTOR_INDEX_PREFIX": self.index_prefix,
                "PROJECTOR_SOURCE_TABLE": self.source_table,
                "PROJECTOR_AGGREGATES_TABLE": self.aggregates_table,
                "PROJECTOR_DEAD_LETTERS": self.dead_letters_dir.as_uri(),
                "PROJECTOR_STATE_DIR": str(state_dir or self.state_dir),
                "PROJECTOR_OPENSEARCH_URL": opensearch_url,
                "PROJECTOR_OPENSEARCH_AUTH": "none",
                "PROJECTOR_DYNAMODB_ENDPOINT": dynamodb_url,
                "AWS_REGION": REGION,
                "AWS_DEFAULT_REGION": REGION,
                "AWS_ACCESS_KEY_ID": "testing",
                "AWS_SECRET_ACCESS_KEY": "testing",
                "AWS_SESSION_TOKEN": "testing",
                "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
            }
        )
        env.update(extra)
        return env


def engine_tree() -> dict[str, Any]:
    """The commit under test and the engine files that differ from it (attributing drift to a change)."""

    def git(*args: str) -> str:
        try:
            return subprocess.run(
                ["git", *args], cwd=ROOT, capture_output=True, text=True, timeout=30, check=False
            ).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            return ""

    changed = [
        line
        for line in git("diff", "--name-only", "HEAD", "--", "projector", "projections").splitlines()
        if line
    ]
    return {
        "head": git("rev-parse", "--short", "HEAD"),
        "modified": changed,
        "diff_sha1": _sha1(git("diff", "HEAD", "--", "projector", "projections")) if changed else None,
    }


def _sha1(text: str) -> str:
    import hashlib

    return hashlib.sha1(text.encode()).hexdigest()[:12]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind((LOCAL_HOST, 0))
        return int(probe.getsockname()[1])


@dataclass(frozen=True, slots=True)
class CommandResult:
    code: int
    data: Any
    stderr: str


def projector(
    args: list[str], env: dict[str, str], timeout_s: float, log: Path | None = None
) -> CommandResult:
    """Run ``projector ARGS`` (``--json`` expected among them) to completion; its JSON answer, if any."""
    try:
        done = subprocess.run(
            [*PROJECTOR, *args],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout_s,
            check=False,
        )
    except subprocess.TimeoutExpired as expired:
        stderr = expired.stderr.decode(errors="replace") if isinstance(expired.stderr, bytes) else ""
        _log(log, args, -1, stderr)
        return CommandResult(-1, None, f"timed out after {timeout_s:g} s")
    _log(log, args, done.returncode, done.stderr)
    data = None
    if done.stdout.strip():
        try:
            data = json.loads(done.stdout)
        except ValueError:
            data = None
    return CommandResult(done.returncode, data, done.stderr.strip())


def _log(log: Path | None, args: list[str], code: int, stderr: str) -> None:
    if log is None:
        return
    with log.open("a", encoding="utf-8") as out:
        out.write(f"\n--- projector {' '.join(args)} -> exit {code}\n{stderr[-20000:]}\n")


def aws_client(service: str, endpoint: str = MOTO) -> Any:
    import boto3
    from botocore.config import Config

    return boto3.client(
        service,
        endpoint_url=endpoint,
        region_name=REGION,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        config=Config(retries={"max_attempts": 5, "mode": "standard"}, read_timeout=30),
    )


def cleanup(names: SoakNames, keep_files: bool = False) -> list[str]:
    """Delete the soak's indexes, templates and tables (and its folder unless ``keep_files``); problems."""
    problems: list[str] = []
    try:
        _drop_opensearch(names.index_prefix)
    except Exception as error:
        problems.append(f"opensearch cleanup: {error}")
    client = aws_client("dynamodb")
    for table in (names.source_table, names.aggregates_table):
        try:
            client.delete_table(TableName=table)
        except client.exceptions.ResourceNotFoundException:
            pass
        except Exception as error:
            problems.append(f"table {table}: {error}")
    if not keep_files:
        shutil.rmtree(names.work_dir, ignore_errors=True)
    return problems


def _drop_opensearch(prefix: str) -> None:
    from opensearchpy import OpenSearch
    from opensearchpy.exceptions import NotFoundError

    client = OpenSearch(hosts=[OPENSEARCH], timeout=30)
    pattern = f"{prefix}*"
    try:
        for index in client.indices.get(index=pattern, expand_wildcards="all", ignore_unavailable=True):
            client.indices.delete(index=index, ignore_unavailable=True)
        for path, key in (
            ("_index_template", "index_templates"),
            ("_template", None),
            ("_component_template", "component_templates"),
        ):
            try:
                found = client.transport.perform_request("GET", f"/{path}/{pattern}")
            except NotFoundError:
                continue
            names = [entry["name"] for entry in found.get(key, [])] if key else list(found)
            for name in names:
                with contextlib.suppress(NotFoundError):
                    client.transport.perform_request("DELETE", f"/{path}/{name}")
    finally:
        client.close()
