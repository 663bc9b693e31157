"""What a log line may say about a record: error kinds, field paths, hashes and counts, never values.

Kept free of Powertools so the CLI and the pipeline import it at no cost; ``projector.observability``
adds the Lambda side (JSON handler, correlation keys, traces) and is loaded only in Lambda.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
from collections.abc import Iterator

from projector.observability_env import current_projection, in_lambda


@contextlib.contextmanager
def projection_scope(name: str) -> Iterator[None]:
    """Log lines written while ``name``'s sink runs carry ``projection``; in Lambda, one subsegment."""
    with current_projection(name):
        if in_lambda():
            from projector.observability import subsegment

            with subsegment(f"projection {name}"):
                yield
        else:
            yield


def loggable(text: str | None, keep: int = 2) -> str:
    """An error text cut down to its kind, safe to log: ``projection failed: ValueError [error 1a2b…]``.

    Error texts of poison records may quote item values (an exception message, OpenSearch's preview of
    a field's value). The dead letter keeps the whole text; a log line gets the first ``keep`` ``": "``
    separated parts and a short hash of the whole text, which matches the letter's ``error``.
    """
    if not text:
        return ""
    digest = hashlib.sha256(text.encode("utf-8", "replace")).hexdigest()[:10]
    head = ": ".join(text.split(": ")[:keep])
    if any(mark in head for mark in ("'", '"', "[", "=")):  # something quoted survived: keep one word
        head = head.split(" ", 1)[0]
    return f"{head} [error {digest}]"


#: Library loggers that quote request or response bodies (item documents) at INFO or DEBUG.
BODY_LOGGERS = ("opensearchpy.trace", "opensearch.trace")


def silence_body_loggers() -> None:
    """Keep request bodies out of every log: opensearch-py's trace logger writes whole ``_bulk`` bodies."""
    for name in BODY_LOGGERS:
        body_logger = logging.getLogger(name)
        body_logger.setLevel(logging.WARNING)
        body_logger.propagate = False


def describe(error: BaseException) -> str:
    return f"{type(error).__name__}: {error}"
