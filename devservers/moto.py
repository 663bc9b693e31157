"""The moto server service (DynamoDB, DynamoDB Streams, S3, SQS on 127.0.0.1:5000), run through our
launcher (`devservers.moto_launcher`) rather than stock `moto_server`; see that module for why.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys

from devservers import paths, process
from devservers.moto_launcher import HEALTH_PATH, LAUNCHER_ID
from devservers.service import Service

logger = logging.getLogger(__name__)

PORT = 5000


def health(port: int = PORT) -> dict[str, object] | None:
    """The launcher's health document, or None when nothing (or stock moto) answers."""
    answer = process.http_get(f"http://{process.LOCAL_HOST}:{port}{HEALTH_PATH}", timeout=2.0)
    if answer is None or answer[0] != 200:
        return None
    try:
        body = json.loads(answer[1])
    except ValueError:
        return None
    return body if isinstance(body, dict) and body.get("launcher") == LAUNCHER_ID else None


class Moto(Service):
    """moto's server behind our serialising, journaling launcher."""

    name = "moto"
    port = PORT
    marker = "devservers.moto_launcher"
    start_timeout = 30.0

    def answering(self) -> bool:
        # Any HTTP answer counts (stock moto answers 404 here); ours answers without taking its lock.
        return process.http_get(f"{self.url}{HEALTH_PATH}", timeout=2.0) is not None

    def recognised(self) -> bool:
        return health(self.port) is not None

    def note(self) -> str:
        if self.answering() and health(self.port) is None:
            return "not our launcher (stock moto?)"
        return ""

    def launch(self) -> subprocess.Popen[bytes]:
        env = dict(os.environ)
        root = str(paths.repo_root())
        env["PYTHONPATH"] = root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
        env["MOTO_PORT"] = str(self.port)
        command = [
            sys.executable,
            "-m",
            "devservers.moto_launcher",
            "--host",
            process.LOCAL_HOST,
            "--port",
            str(self.port),
        ]
        return process.spawn(self.name, command, env=env, cwd=paths.repo_root(), log=self.log_path())
