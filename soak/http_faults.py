"""A thin HTTP fault layer in front of OpenSearch: 429 and 503 answers a TCP proxy cannot produce.

A small threaded HTTP/1.1 proxy on 127.0.0.1 (ephemeral port) that forwards every request to the
upstream OpenSearch. While a mode is switched on, each request is, with the mode's probability:

* ``http_429``: answered ``429 Too Many Requests`` without being forwarded (throttling);
* ``http_503``: answered ``503 Service Unavailable`` without being forwarded;
* ``http_503_after``: forwarded, and then answered ``503`` instead of OpenSearch's answer, so the client
  retries something that already happened.

A request the upstream cannot take (OpenSearch restarting) is answered ``502 Bad Gateway``, like a load
balancer would. Nothing is retried here: one client request is at most one upstream request.
"""

from __future__ import annotations

import http.client
import json
import logging
import random
import threading
from collections import Counter
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

logger = logging.getLogger(__name__)

LOCAL_HOST = "127.0.0.1"
MODES = ("http_429", "http_503", "http_503_after")
UPSTREAM_TIMEOUT_S = 60.0
_HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "content-length",
    }
)
_BODIES = {
    429: {
        "error": {
            "type": "rejected_execution_exception",
            "reason": "rejected execution (soak fault layer: throttled)",
        },
        "status": 429,
    },
    503: {
        "error": {"type": "unavailable_shards_exception", "reason": "soak fault layer: service unavailable"},
        "status": 503,
    },
    502: {
        "error": {"type": "bad_gateway", "reason": "soak fault layer: upstream unreachable"},
        "status": 502,
    },
}


@dataclass(frozen=True, slots=True)
class _Mode:
    kind: str
    probability: float


class HttpFaultLayer:
    """The fault layer's server; ``set_mode`` / ``clear`` switch faults, ``counts`` says what was faulted."""

    def __init__(self, upstream_host: str = LOCAL_HOST, upstream_port: int = 9200, seed: int = 0) -> None:
        self.upstream = (upstream_host, upstream_port)
        self._rng = random.Random(seed)
        self._lock = threading.Lock()
        self._mode: _Mode | None = None
        self.counts: Counter[str] = Counter()
        self.forwarded = 0
        self.upstream_errors = 0
        self._server = _Server((LOCAL_HOST, 0), _handler_class(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="http-faults", daemon=True)

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def address(self) -> str:
        return f"{LOCAL_HOST}:{self.port}"

    def start(self) -> HttpFaultLayer:
        self._thread.start()
        return self

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def set_mode(self, kind: str, probability: float) -> None:
        if kind not in MODES:
            raise ValueError(f"unknown HTTP fault {kind!r} (known: {', '.join(MODES)})")
        with self._lock:
            self._mode = _Mode(kind, probability)

    def clear(self) -> None:
        with self._lock:
            self._mode = None

    def decide(self) -> str | None:
        """The fault for the next request, if any (and count it)."""
        with self._lock:
            mode = self._mode
            if mode is None or self._rng.random() >= mode.probability:
                return None
            self.counts[mode.kind] += 1
            return mode.kind

    def note_forwarded(self, ok: bool) -> None:
        with self._lock:
            if ok:
                self.forwarded += 1
            else:
                self.upstream_errors += 1


class _Server(ThreadingHTTPServer):
    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that resets its connection (a reset_peer fault upstream of us) is no error of ours."""
        logger.debug("http-faults: connection from %s ended abruptly", client_address, exc_info=True)


def _handler_class(layer: HttpFaultLayer) -> type[BaseHTTPRequestHandler]:
    class Handler(_Forwarder):
        pass

    Handler.layer = layer
    return Handler


class _Forwarder(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    layer: HttpFaultLayer

    def log_message(self, format: str, *args: Any) -> None:
        logger.debug("http-faults: " + format, *args)

    def do_GET(self) -> None:
        self._serve()

    do_POST = do_PUT = do_DELETE = do_HEAD = do_PATCH = do_GET

    def _serve(self) -> None:
        body = self._read_body()
        fault = self.layer.decide()
        if fault in ("http_429", "http_503"):
            self._answer(429 if fault == "http_429" else 503)
            return
        forwarded = self._forward(body)
        if forwarded is None:
            self.layer.note_forwarded(False)
            self._answer(502)
            return
        self.layer.note_forwarded(True)
        if fault == "http_503_after":
            self._answer(503)
            return
        status, reason, headers, payload = forwarded
        self.send_response(status, reason)
        for name, value in headers:
            if name.lower() not in _HOP_BY_HOP:
                self.send_header(name, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(payload)

    def _read_body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            return self.rfile.read(length)
        if (self.headers.get("Transfer-Encoding") or "").lower() == "chunked":
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    self.rfile.readline()
                    break
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
            return b"".join(chunks)
        return b""

    def _forward(self, body: bytes) -> tuple[int, str, list[tuple[str, str]], bytes] | None:
        host, port = self.layer.upstream
        connection = http.client.HTTPConnection(host, port, timeout=UPSTREAM_TIMEOUT_S)
        headers = {name: value for name, value in self.headers.items() if name.lower() not in _HOP_BY_HOP}
        headers["Host"] = f"{host}:{port}"
        headers["Connection"] = "close"
        if body or self.command in ("POST", "PUT"):
            headers["Content-Length"] = str(len(body))
        try:
            connection.request(self.command, self.path, body=body or None, headers=headers)
            response = connection.getresponse()
            payload = response.read()
            return response.status, response.reason, response.getheaders(), payload
        except (OSError, http.client.HTTPException) as error:
            logger.debug("http-faults: upstream %s %s failed: %s", self.command, self.path, error)
            return None
        finally:
            connection.close()

    def _answer(self, status: int) -> None:
        payload = json.dumps(_BODIES[status]).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=UTF-8")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(payload)
