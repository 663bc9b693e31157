"""Errors of the OpenSearch sink and what counts as worth retrying."""

from __future__ import annotations

from opensearchpy.exceptions import ConnectionError as TransportConnectionError
from opensearchpy.exceptions import SSLError, TransportError

RETRYABLE_STATUS = frozenset({429, 500, 502, 503, 504})
REJECTED_TYPES = frozenset(
    {
        "es_rejected_execution_exception",
        "rejected_execution_exception",
        "opensearch_rejected_execution_exception",
    }
)


class IndexLayoutError(RuntimeError):
    """The aliases and indexes of a projection are not in the state an operation needs."""


class PendingItems(Exception):
    """Some items of a bulk write got a retryable answer; raised so the retry policy runs again."""

    def __init__(self, count: int, reason: str) -> None:
        self.count = count
        self.reason = reason
        super().__init__(f"{count} item(s) to retry: {reason}")


def is_retryable(error: BaseException) -> bool:
    """Connection trouble, timeouts, throttling and 5xx answers; never a client error or a TLS failure."""
    if isinstance(error, PendingItems):
        return True
    if isinstance(error, SSLError):
        return False
    if isinstance(error, TransportConnectionError):
        return True
    if isinstance(error, TransportError):
        status = error.status_code
        return isinstance(status, int) and (status in RETRYABLE_STATUS or status >= 500)
    return False


def describe_error(error: BaseException) -> str:
    """One line for SinkResult.failed and the logs."""
    return f"{type(error).__name__}: {error}"
