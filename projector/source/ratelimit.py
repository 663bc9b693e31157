"""A token bucket in items per second, shared by every scan worker of a run.

A page's size is known only once it has been read, so the bucket works on debt: a worker waits until
the balance is no longer negative, takes the page's ``Limit`` in the same step, sends its request and
gives back what the page did not use. Over a run the rate is held to the limit, and workers that start
together are spread out instead of bursting. Waiting is ``Event.wait``, so a stop request ends it at once.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable


class TokenBucket:
    """``rate`` items per second; at most ``burst`` seconds' worth saved up while idle."""

    def __init__(
        self, rate: float, burst_s: float = 1.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        if rate <= 0:
            raise ValueError(f"rate must be positive, got {rate}")
        self.rate = rate
        self.capacity = rate * burst_s
        self._clock = clock
        self._tokens = 0.0
        self._updated = clock()
        self._lock = threading.Lock()

    def _refill(self) -> None:
        now = self._clock()
        self._tokens = min(self.capacity, self._tokens + (now - self._updated) * self.rate)
        self._updated = now

    def acquire(self, stop: threading.Event, count: int) -> bool:
        """Wait until the balance is not negative, then take ``count``; False if ``stop`` is set meanwhile."""
        while True:
            with self._lock:
                self._refill()
                if self._tokens >= 0:
                    self._tokens -= count
                    return True
                wait = -self._tokens / self.rate
            if stop.wait(wait):
                return False

    def refund(self, count: int) -> None:
        """Give back what a request took but did not use (a short page)."""
        if count > 0:
            with self._lock:
                self._tokens = min(self.capacity, self._tokens + count)
