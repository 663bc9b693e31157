"""Errors of the OpenSearch sink and what counts as worth retrying."""

from __future__ import annotations

from projector.exceptions import ProjectorError
from projector.retry.transient import is_transient


class IndexLayoutError(ProjectorError, RuntimeError):
    """The aliases and indexes of a projection are not in the state an operation needs."""


class PendingItems(ProjectorError):
    """Some items of a bulk write got a retryable answer; raised so the retry policy runs again."""

    def __init__(self, count: int, reason: str) -> None:
        self.count = count
        self.reason = reason
        super().__init__(f"{count} item(s) to retry: {reason}")


def is_retryable(error: BaseException) -> bool:
    """Items still pending, and whatever ``projector.retry.transient`` calls transient."""
    return isinstance(error, PendingItems) or is_transient(error)


def describe_error(error: BaseException) -> str:
    """One line for SinkResult.failed and the logs."""
    return f"{type(error).__name__}: {error}"
