"""The Lambda Runtime Interface Emulator running projector's handler under `awslambdaric`, on
127.0.0.1 only: the real Lambda invoke API for tests, without AWS.

Started on demand (`scripts/services start --only rie`, or `running_rie()` in a test with its own
environment); not started by default.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import subprocess
import sys
import urllib.request
from collections.abc import Iterator, Mapping
from typing import Any

from devservers import gotools, paths, process
from devservers.service import Service

logger = logging.getLogger(__name__)

DEFAULT_HANDLER = "projector.handler.lambda_handler"
INVOKE_PATH = "/2015-03-31/functions/function/invocations"


class Rie(Service):
    """aws-lambda-rie on 127.0.0.1:PORT (its runtime API on 127.0.0.1:RUNTIME_API_PORT)."""

    marker = "aws-lambda-rie"
    start_timeout = 20.0

    def __init__(
        self,
        *,
        handler: str = DEFAULT_HANDLER,
        port: int = 8080,
        runtime_api_port: int = 9001,
        env: Mapping[str, str] | None = None,
        name: str = "rie",
    ) -> None:
        super().__init__(name=name, port=port)
        self.handler = handler
        self.runtime_api_port = runtime_api_port
        self.extra_env = dict(env or {})

    def recognised(self) -> bool:
        return any(
            self.marker in process.cmdline(pid)
            for listener in process.listeners_on(self.port)
            for pid in listener.pids
        )

    def prepare(self) -> None:
        self._binary = gotools.ensure_rie()

    def launch(self) -> subprocess.Popen[bytes]:
        host = process.LOCAL_HOST
        command = [
            str(self._binary),
            "--log-level",
            "error",
            "--runtime-interface-emulator-address",
            f"{host}:{self.port}",
            "--runtime-api-address",
            f"{host}:{self.runtime_api_port}",
            sys.executable,
            "-m",
            "awslambdaric",
            self.handler,
        ]
        env = dict(os.environ)
        env.update(self.extra_env)
        root = str(paths.repo_root())
        env["PYTHONPATH"] = root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
        return process.spawn(self.name, command, env=env, cwd=paths.repo_root(), log=self.log_path())

    def invoke(self, event: Any, timeout: float = 120.0) -> Any:
        """POST EVENT to the invoke API and return the handler's decoded answer."""
        request = urllib.request.Request(
            self.url + INVOKE_PATH, data=json.dumps(event).encode(), method="POST"
        )
        with urllib.request.urlopen(request, timeout=timeout) as response:
            raw = response.read()
        return json.loads(raw) if raw.strip() else None


@contextlib.contextmanager
def running_rie(
    *,
    handler: str = DEFAULT_HANDLER,
    env: Mapping[str, str] | None = None,
    port: int = 18080,
    runtime_api_port: int = 19001,
) -> Iterator[Rie]:
    """A private RIE for one test (its own environment and ports), stopped on exit."""
    rie = Rie(handler=handler, port=port, runtime_api_port=runtime_api_port, env=env, name=f"rie-{port}")
    rie.start()
    try:
        yield rie
    finally:
        rie.stop()
