"""The tests' one polling helper: it returns what it waited for, and fails by name when it never comes."""

from __future__ import annotations

import pytest

from tests.support.polling import wait_until

pytestmark = pytest.mark.unit


def test_returns_the_first_truthy_answer() -> None:
    answers = iter([None, 0, {}, {"status": "CREATE_COMPLETE"}, {"status": "later"}])
    assert wait_until(lambda: next(answers), seconds=5, interval=0) == {"status": "CREATE_COMPLETE"}


def test_fails_naming_what_never_happened() -> None:
    calls: list[int] = []

    def never() -> bool:
        calls.append(1)
        return False

    with pytest.raises(AssertionError, match="waiting for the port to open"):
        wait_until(never, seconds=0.05, interval=0.01, what="the port to open")
    assert len(calls) >= 2  # asked again until the time was up, and once more at the end


def test_a_condition_that_raises_fails_at_once() -> None:
    def dead() -> bool:
        raise RuntimeError("the child exited with 1")

    with pytest.raises(RuntimeError, match="exited"):
        wait_until(dead, seconds=30)
