"""How long the current invocation may still spend, so no retry sleeps past Lambda's timeout."""

from __future__ import annotations

import time
from collections.abc import Callable


class Deadline:
    """Seconds left before the invocation must answer; unbounded outside Lambda (``context`` is None)."""

    def __init__(self, remaining_ms: Callable[[], int] | None = None, margin_ms: int = 0) -> None:
        self._remaining_ms = remaining_ms
        self._margin_ms = margin_ms

    @classmethod
    def from_context(cls, context: object | None, margin_ms: int) -> Deadline:
        remaining = getattr(context, "get_remaining_time_in_millis", None)
        return cls(remaining if callable(remaining) else None, margin_ms)

    @classmethod
    def after(cls, seconds: float) -> Deadline:
        """A deadline ``seconds`` from now (the runner and tests use it)."""
        end = time.monotonic() + seconds
        return cls(lambda: int((end - time.monotonic()) * 1000))

    @classmethod
    def never(cls) -> Deadline:
        return cls(None)

    def remaining(self) -> float:
        if self._remaining_ms is None:
            return float("inf")
        return (self._remaining_ms() - self._margin_ms) / 1000.0

    @property
    def expired(self) -> bool:
        return self.remaining() <= 0

    def timeout(self, wanted: float) -> float:
        """A request timeout that cannot outlive the deadline (at least a sliver, so a request can start)."""
        return max(0.05, min(wanted, self.remaining()))
