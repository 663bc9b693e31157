"""Reading a function's answer by Lambda's ReportBatchItemFailures rules, in-process and over HTTP."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from projector.runner.invoker import HttpInvoker, InProcessInvoker, interpret, load_handler

pytestmark = pytest.mark.unit


def _records(*numbers: str) -> list[dict[str, Any]]:
    return [{"eventID": n, "dynamodb": {"SequenceNumber": n}, "eventSourceARN": "arn"} for n in numbers]


BATCH = _records("10", "20", "30")


@pytest.mark.parametrize(
    "answer", [None, {}, "", {"batchItemFailures": []}, {"batchItemFailures": None}, "text"]
)
def test_empty_answers_are_success(answer: Any) -> None:
    assert interpret(answer, BATCH).ok


def test_failures_resend_from_the_lowest_reported_record() -> None:
    result = interpret({"batchItemFailures": [{"itemIdentifier": "30"}, {"itemIdentifier": "20"}]}, BATCH)
    assert not result.ok and result.error is None
    assert result.failed_at == 1
    assert result.reported == ["30", "20"]


@pytest.mark.parametrize(
    "failures",
    [
        [{"itemIdentifier": ""}],
        [{"itemIdentifier": None}],
        [{"itemId": "20"}],
        [{"itemIdentifier": "99"}],
        "20",
    ],
)
def test_an_answer_naming_no_record_of_the_batch_fails_it_whole(failures: Any) -> None:
    result = interpret({"batchItemFailures": failures}, BATCH)
    assert result.error is not None and result.failed_at is None


def test_in_process_passes_a_lambda_like_context() -> None:
    seen: dict[str, Any] = {}

    def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        seen.update(
            event=event,
            remaining=context.get_remaining_time_in_millis(),
            request=context.aws_request_id,
            name=context.function_name,
        )
        return {"batchItemFailures": [{"itemIdentifier": "20"}]}

    result = InProcessInvoker(handler, timeout_s=5, function_name="fn").invoke(BATCH)

    assert result.failed_at == 1
    assert seen["event"] == {"Records": BATCH}
    assert 4000 < seen["remaining"] <= 5000
    assert seen["name"] == "fn" and len(seen["request"]) == 36


def test_a_raising_handler_fails_the_whole_batch() -> None:
    def handler(event: dict[str, Any], context: Any) -> None:
        raise RuntimeError("opensearch down")

    result = InProcessInvoker(handler).invoke(BATCH)
    assert result.error == "RuntimeError: opensearch down"


def test_a_handler_past_its_timeout_counts_as_failed() -> None:
    def slow(event: dict[str, Any], context: Any) -> None:
        time.sleep(0.15)

    assert "timed out" in (InProcessInvoker(slow, timeout_s=0.05).invoke(BATCH).error or "")


def test_load_handler_accepts_both_spellings() -> None:
    assert load_handler("json:dumps") is json.dumps
    assert load_handler("json.dumps") is json.dumps
    with pytest.raises(ValueError):
        load_handler("json:nothing_here")
    with pytest.raises(ImportError):
        load_handler("no_such_module_xyz:handler")


class _Endpoint(BaseHTTPRequestHandler):
    answers: list[tuple[int, dict[str, str], bytes]] = []
    bodies: list[dict[str, Any]] = []

    def do_POST(self) -> None:
        length = int(self.headers["Content-Length"])
        type(self).bodies.append(json.loads(self.rfile.read(length)))
        status, headers, body = type(self).answers.pop(0)
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def endpoint() -> Iterator[str]:
    _Endpoint.answers, _Endpoint.bodies = [], []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Endpoint)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/2015-03-31/functions/function/invocations"
    server.shutdown()
    server.server_close()


def test_http_invoker_reads_answers_like_lambda(endpoint: str) -> None:
    error_document = {"errorMessage": "kaboom", "errorType": "RuntimeError", "stackTrace": []}
    _Endpoint.answers = [
        (200, {}, json.dumps({"batchItemFailures": [{"itemIdentifier": "30"}]}).encode()),
        (200, {}, b"null"),
        (200, {}, json.dumps(error_document).encode()),  # the RIE: 200 with an error document
        (200, {"X-Amz-Function-Error": "Unhandled"}, b'"oops"'),  # Lambda's own invoke API
        (502, {}, b"bad gateway"),
        (200, {}, b"not json"),
    ]
    invoker = HttpInvoker(endpoint, timeout_s=5)

    assert invoker.invoke(BATCH).failed_at == 2
    assert _Endpoint.bodies[0] == {"Records": BATCH}
    assert invoker.invoke(BATCH).ok
    assert invoker.invoke(BATCH).error == "function error: RuntimeError: kaboom"
    assert "function error" in (invoker.invoke(BATCH).error or "")
    assert "HTTP 502" in (invoker.invoke(BATCH).error or "")
    assert "invalid JSON" in (invoker.invoke(BATCH).error or "")


def test_http_invoker_unreachable_is_a_failed_batch() -> None:
    result = HttpInvoker("http://127.0.0.1:9/nothing", timeout_s=1).invoke(BATCH)
    assert result.error is not None and "unreachable" in result.error
