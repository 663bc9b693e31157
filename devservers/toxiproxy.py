"""Toxiproxy on 127.0.0.1:8474 and a small client for its HTTP API: put network faults (latency,
resets, timeouts, bandwidth limits, a cut link) between projector and a local server.

Used on demand by fault-injection tests and the chaos soak; not started by default.
"""

from __future__ import annotations

import json
import logging
import subprocess
import urllib.error
import urllib.request
from typing import Any

from devservers import gotools, process
from devservers.process import ServiceError
from devservers.service import Service

logger = logging.getLogger(__name__)

API_PORT = 8474


class Toxiproxy(Service):
    """The Toxiproxy server (API on 127.0.0.1:8474; one listen port per proxy, 127.0.0.1 only)."""

    name = "toxiproxy"
    port = API_PORT
    marker = "toxiproxy-server"
    start_timeout = 15.0

    def answering(self) -> bool:
        answer = process.http_get(f"{self.url}/version", timeout=1.0)
        return answer is not None and answer[0] == 200

    def prepare(self) -> None:
        self._binary = gotools.ensure_toxiproxy()

    def launch(self) -> subprocess.Popen[bytes]:
        command = [str(self._binary), "-host", process.LOCAL_HOST, "-port", str(self.port)]
        return process.spawn(self.name, command, log=self.log_path())


class ToxiproxyError(RuntimeError):
    """The Toxiproxy API refused a request."""


class ToxiproxyClient:
    """Thin client of the Toxiproxy HTTP API (https://github.com/Shopify/toxiproxy#http-api)."""

    def __init__(self, url: str = f"http://{process.LOCAL_HOST}:{API_PORT}", timeout: float = 5.0) -> None:
        self.url = url.rstrip("/")
        self.timeout = timeout

    def _call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(self.url + path, data=data, method=method)
        request.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                raw = response.read()
        except urllib.error.HTTPError as error:
            raise ToxiproxyError(
                f"{method} {path}: HTTP {error.code} {error.read().decode(errors='replace')}"
            ) from None
        except OSError as error:
            raise ToxiproxyError(f"{method} {path}: {error}") from None
        return json.loads(raw) if raw.strip() else None

    def version(self) -> str:
        """The server's version string."""
        request = urllib.request.Request(self.url + "/version")
        with urllib.request.urlopen(request, timeout=self.timeout) as response:
            return response.read().decode().strip()

    def proxies(self) -> dict[str, Any]:
        """Every proxy by name, with its toxics."""
        return self._call("GET", "/proxies") or {}

    def create_proxy(self, name: str, listen: str, upstream: str, *, replace: bool = True) -> dict[str, Any]:
        """A proxy listening on LISTEN (must be 127.0.0.1:PORT) forwarding to UPSTREAM."""
        if not listen.startswith(f"{process.LOCAL_HOST}:"):
            raise ServiceError(f"toxiproxy: proxy {name} must listen on {process.LOCAL_HOST}, not {listen}")
        if replace and name in self.proxies():
            self.delete_proxy(name)
        return self._call(
            "POST", "/proxies", {"name": name, "listen": listen, "upstream": upstream, "enabled": True}
        )

    def delete_proxy(self, name: str) -> None:
        """Remove the proxy NAME (its listen port closes)."""
        self._call("DELETE", f"/proxies/{name}")

    def set_enabled(self, name: str, enabled: bool) -> dict[str, Any]:
        """Enable or disable (cut the link of) the proxy NAME."""
        return self._call("POST", f"/proxies/{name}", {"enabled": enabled})

    def add_toxic(
        self,
        proxy: str,
        toxic_type: str,
        attributes: dict[str, Any] | None = None,
        *,
        name: str | None = None,
        stream: str = "downstream",
        toxicity: float = 1.0,
    ) -> dict[str, Any]:
        """Add a toxic (latency, timeout, reset_peer, bandwidth, limit_data, slow_close, slicer)."""
        body: dict[str, Any] = {
            "type": toxic_type,
            "stream": stream,
            "toxicity": toxicity,
            "attributes": attributes or {},
        }
        if name:
            body["name"] = name
        return self._call("POST", f"/proxies/{proxy}/toxics", body)

    def remove_toxic(self, proxy: str, toxic: str) -> None:
        """Remove one toxic by name (default names are TYPE_STREAM, e.g. latency_downstream)."""
        self._call("DELETE", f"/proxies/{proxy}/toxics/{toxic}")

    def reset(self) -> None:
        """Enable every proxy and remove every toxic."""
        self._call("POST", "/reset")


def start_toxiproxy() -> ToxiproxyClient:
    """Start (or reuse) the Toxiproxy server and return a client for it."""
    Toxiproxy().start()
    return ToxiproxyClient()
