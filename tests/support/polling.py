"""Waiting in tests: poll a condition until it holds, or fail naming what never happened.

The one "wait until" loop of the suite. A test waits for an observable state (a file's lines, a port,
a stack's status), never for a fixed time; a condition may raise to fail at once (a child process that
died while being waited for).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def wait_until(
    condition: Callable[[], T], seconds: float = 30.0, interval: float = 0.05, what: str = "the condition"
) -> T:
    """The first truthy answer of ``condition``; an AssertionError once ``seconds`` passed without one."""
    end = time.monotonic() + seconds
    while True:
        answer = condition()
        if answer:
            return answer
        if time.monotonic() >= end:
            raise AssertionError(f"timed out after {seconds:g} s waiting for {what}")
        time.sleep(interval)
