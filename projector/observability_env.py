"""Where the process runs and which projection's sink runs now, without importing Powertools.

The bottom of the observability modules: ``projector.logsafe`` sets the current projection,
``projector.observability`` (Powertools) reads it through ``ProjectionFilter``; neither imports the other
for it.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator
from contextvars import ContextVar

_projection: ContextVar[str | None] = ContextVar("projector_projection", default=None)


def in_lambda() -> bool:
    """True inside a Lambda runtime (also the Runtime Interface Emulator), never in the CLI or tests."""
    return bool(os.environ.get("AWS_LAMBDA_RUNTIME_API")) and bool(os.environ.get("AWS_LAMBDA_FUNCTION_NAME"))


@contextlib.contextmanager
def current_projection(name: str) -> Iterator[None]:
    """``name`` is the projection whose sink runs in this context until the block ends."""
    token = _projection.set(name)
    try:
        yield
    finally:
        _projection.reset(token)


class ProjectionFilter(logging.Filter):
    """Adds the ``projection`` correlation key of the sink running in this context."""

    def filter(self, record: logging.LogRecord) -> bool:
        name = _projection.get()
        if name is not None and not hasattr(record, "projection"):
            record.projection = name
        return True
