"""Entry point of the local moto server: `python -m devservers.moto_launcher --host 127.0.0.1 --port 5000`.

Stock `moto_server` has two hazards for concurrency tests (see docs/services.md): its backends are
not thread-safe (lost writes and HTTP 500s when a cancelled transaction races other writers), and
TransactWriteItems deep-copies whole tables. This launcher serves moto's own WSGI application
(`DomainDispatcherApplication(create_backend_app)`, exactly what `moto_server` serves) but
1. holds one lock around every request, body included, so requests apply one at a time;
2. installs `devservers.moto_journal`, a per-item rollback journal for TransactWriteItems;
3. installs `devservers.moto_streams`: an UpdateItem that creates an item records one INSERT
   (stock moto records a keys-only INSERT first);
4. adds numbers with DynamoDB's 38 significant digits (stock moto: Python's default 28).
It binds the given host only (127.0.0.1 by default) and answers `GET /_devservers/health`.
"""

from __future__ import annotations

import argparse
import decimal
import io
import json
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterable
from types import FrameType
from typing import Any

logger = logging.getLogger(__name__)

HEALTH_PATH = "/_devservers/health"
LAUNCHER_ID = "devservers.moto_launcher"
DYNAMODB_DIGITS = 38

StartResponse = Callable[..., Any]
WsgiApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]


class SerialisedApp:
    """Runs the wrapped WSGI app for one request at a time (the body is produced under the lock).

    The request body is read before taking the lock, so a slow client cannot stall the others.
    """

    def __init__(self, app: WsgiApp) -> None:
        self._app = app
        self._lock = threading.Lock()
        self.requests = 0
        self.started = time.time()

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        if environ.get("PATH_INFO") == HEALTH_PATH:
            return self._health(start_response)
        _buffer_body(environ)
        with self._lock:
            self.requests += 1
            # DynamoDB keeps 38 significant digits; moto adds numbers in the thread's decimal context,
            # whose default precision (28) would round an ADD of two 29-digit values.
            decimal.getcontext().prec = DYNAMODB_DIGITS
            result = self._app(environ, start_response)
            try:
                return [b"".join(result)]
            finally:
                close = getattr(result, "close", None)
                if close is not None:
                    close()

    def _health(self, start_response: StartResponse) -> list[bytes]:
        body = json.dumps(
            {
                "launcher": LAUNCHER_ID,
                "pid": os.getpid(),
                "serialised": True,
                "transaction_journal": _journal_installed(),
                "single_insert_on_update": _single_insert_installed(),
                "requests": self.requests,
                "uptime_s": round(time.time() - self.started, 1),
            }
        ).encode()
        start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
        return [body]


def _buffer_body(environ: dict[str, Any]) -> None:
    """Read a Content-Length body into memory so the app's read happens without network waits."""
    try:
        length = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return
    if length > 0:
        environ["wsgi.input"] = io.BytesIO(environ["wsgi.input"].read(length))


def _journal_installed() -> bool:
    from moto.dynamodb.models import DynamoDBBackend

    return bool(getattr(DynamoDBBackend.transact_write_items, "_devservers_journal", False))


def _single_insert_installed() -> bool:
    from devservers import moto_streams

    return moto_streams.installed()


def build_app(*, journal: bool = True) -> SerialisedApp:
    """moto's server application behind our lock, with the transaction journal installed."""
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app

    if journal:
        from devservers import moto_journal, moto_streams

        moto_journal.install()
        moto_streams.install()
    app = DomainDispatcherApplication(create_backend_app)
    app.debug = True  # type: ignore[attr-defined]  # as moto_server sets it
    return SerialisedApp(app)


def _exit_now(signum: int, frame: FrameType | None) -> None:
    """State is in memory only: on SIGTERM/SIGINT there is nothing to flush, so leave at once
    (stock moto_server lingers for seconds waiting on keep-alive threads)."""
    logging.shutdown()
    os._exit(0)


def main(argv: list[str] | None = None) -> None:
    """Parse the command line and serve until SIGTERM."""
    parser = argparse.ArgumentParser(
        prog="python -m devservers.moto_launcher", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=5000, help="port (default 5000)")
    parser.add_argument(
        "--no-journal",
        action="store_true",
        help="keep moto's own transaction rollback and UpdateItem stream records (comparisons only)",
    )
    parser.add_argument("--access-log", action="store_true", help="log every request (werkzeug)")
    args = parser.parse_args(argv)

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("werkzeug").setLevel(logging.INFO if args.access_log else logging.WARNING)
    os.environ.setdefault("MOTO_PORT", str(args.port))  # moto builds some URLs (SQS queues) from it

    from moto.moto_server.werkzeug_app import MotoRequestHandler
    from werkzeug.serving import make_server

    app = build_app(journal=not args.no_journal)
    server = make_server(args.host, args.port, app, threaded=True, request_handler=MotoRequestHandler)
    server.daemon_threads = True
    signal.signal(signal.SIGTERM, _exit_now)
    signal.signal(signal.SIGINT, _exit_now)
    logger.info(
        "moto launcher serving on http://%s:%d (serialised, journal=%s)",
        args.host,
        args.port,
        not args.no_journal,
    )
    sys.stdout.flush()
    server.serve_forever()


if __name__ == "__main__":
    main()
