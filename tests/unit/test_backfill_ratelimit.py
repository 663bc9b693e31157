"""The shared token bucket: exact over time, spreads simultaneous workers, stops at once."""

from __future__ import annotations

import threading
import time

import pytest

from projector.source.ratelimit import TokenBucket


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class FakeStop(threading.Event):
    """A stop event whose wait advances the fake clock instead of sleeping."""

    def __init__(self, clock: Clock) -> None:
        super().__init__()
        self.clock = clock
        self.waited: list[float] = []

    def wait(self, timeout: float | None = None) -> bool:
        self.waited.append(timeout or 0.0)
        self.clock.now += timeout or 0.0
        return self.is_set()


def test_pages_are_paced_to_the_rate_and_short_pages_are_refunded() -> None:
    clock = Clock()
    bucket = TokenBucket(100, clock=clock)
    stop = FakeStop(clock)
    for _ in range(10):
        assert bucket.acquire(stop, 50)
    # 10 pages of 50 at 100 items/s: the first goes at once, each later one waits for the previous one's debt
    assert clock.now == pytest.approx(4.5)
    bucket.refund(50)  # the last page came back empty
    assert bucket.acquire(stop, 50)
    assert clock.now == pytest.approx(4.5)


def test_idle_time_saves_up_at_most_one_second() -> None:
    clock = Clock()
    bucket = TokenBucket(100, clock=clock)
    stop = FakeStop(clock)
    clock.now = 60.0
    assert bucket.acquire(stop, 100) and bucket.acquire(stop, 100)
    assert clock.now == 60.0  # one second saved (100) plus the debt-free start
    assert bucket.acquire(stop, 100)
    assert clock.now == pytest.approx(61.0)


def test_a_stop_request_ends_the_wait() -> None:
    bucket = TokenBucket(1)
    stop = threading.Event()
    assert bucket.acquire(stop, 1000)  # 1000 s of debt
    threading.Timer(0.05, stop.set).start()
    started = time.monotonic()
    assert not bucket.acquire(stop, 1)
    assert time.monotonic() - started < 2


def test_the_rate_must_be_positive() -> None:
    with pytest.raises(ValueError):
        TokenBucket(0)
