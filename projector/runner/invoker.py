"""Calling the function with one batch: in this process, or over HTTP to a Lambda invoke endpoint.

Both answer the same ``InvokeResult``, read by Lambda's rules for ``ReportBatchItemFailures``: a null
or empty answer is full success; failures resend from the lowest reported sequence number; a raised
error, a timeout or an answer naming no record of the batch fails the whole batch.
"""

from __future__ import annotations

import importlib
import json
import logging
import os
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

logger = logging.getLogger(__name__)

Handler = Callable[[dict[str, Any], Any], Any]
DEFAULT_HANDLER = "projector.handler.lambda_handler"


@dataclass(frozen=True)
class InvokeResult:
    """One call: ``error`` (whole batch failed), else ``failed_at`` (resend from that index), else ok."""

    error: str | None = None
    failed_at: int | None = None
    reported: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.error is None and self.failed_at is None


class Invoker(Protocol):
    """Something that runs the function on a batch of Lambda-shaped records."""

    def invoke(self, records: Sequence[dict[str, Any]]) -> InvokeResult: ...


def interpret(response: Any, records: Sequence[dict[str, Any]]) -> InvokeResult:
    """Lambda's reading of a function's answer for a stream batch (see the ReportBatchItemFailures docs)."""
    if response is None or response == {} or response == "":
        return InvokeResult()
    if not isinstance(response, dict):
        return InvokeResult()  # Lambda ignores answers that are not an object (e.g. a bare string)
    failures = response.get("batchItemFailures")
    if not failures:
        return InvokeResult()
    if not isinstance(failures, list):
        return InvokeResult(error=f"invalid batchItemFailures: {failures!r}")
    positions = {record["dynamodb"]["SequenceNumber"]: index for index, record in enumerate(records)}
    reported: list[str] = []
    for failure in failures:
        identifier = failure.get("itemIdentifier") if isinstance(failure, dict) else None
        if not isinstance(identifier, str) or identifier not in positions:
            return InvokeResult(error=f"batchItemFailures names no record of the batch: {failure!r}")
        reported.append(identifier)
    return InvokeResult(failed_at=min(positions[identifier] for identifier in reported), reported=reported)


class InvocationContext:
    """The parts of Lambda's context object handlers use: a deadline, a request id, the function's name."""

    def __init__(self, function_name: str, timeout_s: float, region: str = "us-east-1") -> None:
        self.function_name = function_name
        self.function_version = "$LATEST"
        self.invoked_function_arn = f"arn:aws:lambda:{region}:000000000000:function:{function_name}"
        self.memory_limit_in_mb = 1024
        self.aws_request_id = str(uuid.uuid4())
        self.log_group_name = f"/aws/lambda/{function_name}"
        self.log_stream_name = "projector-run"
        self.identity = None
        self.client_context = None
        self._deadline = time.monotonic() + timeout_s

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


class InProcessInvoker:
    """Calls a handler function here. One invocation at a time, like one Lambda execution environment."""

    def __init__(
        self,
        handler: Handler,
        timeout_s: float = 60.0,
        function_name: str = "projector",
        region: str = "us-east-1",
    ) -> None:
        self.handler = handler
        self.timeout_s = timeout_s
        self.function_name = function_name
        self.region = region
        self._lock = threading.Lock()

    def invoke(self, records: Sequence[dict[str, Any]]) -> InvokeResult:
        with self._lock:  # the deadline starts when the invocation does, not while another shard's runs
            context = InvocationContext(self.function_name, self.timeout_s, self.region)
            started = time.monotonic()
            try:
                response = self.handler({"Records": list(records)}, context)
            except Exception as error:
                logger.warning(
                    "handler raised %s: %s",
                    type(error).__name__,
                    error,
                    exc_info=logger.isEnabledFor(logging.DEBUG),
                )
                return InvokeResult(error=f"{type(error).__name__}: {error}")
            elapsed = time.monotonic() - started
        if elapsed > self.timeout_s:  # Lambda would have stopped it: the whole batch counts as failed
            return InvokeResult(
                error=f"Task timed out after {self.timeout_s:.2f} seconds (took {elapsed:.2f})"
            )
        return interpret(response, records)


class HttpInvoker:
    """POSTs the event to a Lambda invoke endpoint (the Runtime Interface Emulator, or Lambda's own URL)."""

    def __init__(self, url: str, timeout_s: float = 60.0) -> None:
        self.url = url
        self.timeout_s = timeout_s
        self._lock = threading.Lock()

    def invoke(self, records: Sequence[dict[str, Any]]) -> InvokeResult:
        body = json.dumps({"Records": list(records)}).encode("utf-8")
        request = urllib.request.Request(
            self.url, data=body, method="POST", headers={"Content-Type": "application/json"}
        )
        with self._lock:
            try:
                with urllib.request.urlopen(request, timeout=self.timeout_s + 5.0) as answer:
                    status, function_error, payload = (
                        answer.status,
                        answer.headers.get("X-Amz-Function-Error"),
                        answer.read(),
                    )
            except urllib.error.HTTPError as error:
                return InvokeResult(
                    error=f"invoke endpoint answered HTTP {error.code}: {_snippet(error.read())}"
                )
            except (urllib.error.URLError, OSError) as error:
                return InvokeResult(error=f"invoke endpoint {self.url} unreachable: {error}")
        if status >= 300:
            return InvokeResult(error=f"invoke endpoint answered HTTP {status}: {_snippet(payload)}")
        try:
            response = json.loads(payload) if payload.strip() else None
        except ValueError:
            return InvokeResult(error=f"invalid JSON from the function: {_snippet(payload)}")
        if function_error or _is_error_document(response):
            return InvokeResult(error=f"function error: {_error_text(response)}")
        return interpret(response, records)


def load_handler(spec: str = DEFAULT_HANDLER) -> Handler:
    """Import ``module:function`` or ``module.function`` (like Lambda's handler); cwd is the task root."""
    module_name, _, attribute = spec.partition(":") if ":" in spec else spec.rpartition(".")
    if not module_name or not attribute:
        raise ValueError(f"handler must look like module:function or module.function, got {spec!r}")
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    module = importlib.import_module(module_name)
    handler: object = getattr(module, attribute, None)
    if not callable(handler):
        raise ValueError(f"{module_name} has no function {attribute!r}")
    return handler


def _is_error_document(response: Any) -> bool:
    return isinstance(response, dict) and "errorMessage" in response and "batchItemFailures" not in response


def _error_text(response: Any) -> str:
    if isinstance(response, dict):
        return f"{response.get('errorType', 'Error')}: {response.get('errorMessage', '')}"
    return _snippet(json.dumps(response).encode())


def _snippet(payload: bytes, limit: int = 300) -> str:
    text = payload.decode("utf-8", "replace").strip()
    return text if len(text) <= limit else text[:limit] + "..."
