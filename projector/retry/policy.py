"""Retry policy shared by every sink (tenacity): what is retried is the caller's call; when is ours."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

from tenacity import RetryCallState, Retrying, retry_if_exception, stop_after_attempt, wait_exponential_jitter
from tenacity.stop import stop_base

from projector.exceptions import ProjectorError
from projector.retry.deadline import Deadline

logger = logging.getLogger(__name__)


class DeadlineExceeded(ProjectorError):
    """The invocation's time is up; what is not applied yet is reported, not retried further."""


@dataclass(frozen=True)
class RetryPolicy:
    """Backoff settings; the defaults suit a Lambda with a few minutes of timeout."""

    max_attempts: int = 8
    initial_wait_s: float = 0.05
    max_wait_s: float = 5.0
    jitter_s: float = 0.1


DEFAULT_POLICY = RetryPolicy()


class _OutOfTime(stop_base):
    """Stop when the next sleep would end past the deadline."""

    def __init__(self, deadline: Deadline) -> None:
        self.deadline = deadline

    def __call__(self, retry_state: RetryCallState) -> bool:
        return self.deadline.remaining() - (retry_state.upcoming_sleep or 0.0) <= 0


def retrying(
    deadline: Deadline,
    is_retryable: Callable[[BaseException], bool],
    policy: RetryPolicy = DEFAULT_POLICY,
    what: str = "request",
) -> Retrying:
    """A tenacity ``Retrying`` that retries ``is_retryable`` errors and never sleeps past ``deadline``."""

    def log_retry(state: RetryCallState) -> None:
        error = state.outcome.exception() if state.outcome else None
        # INFO: a retry is normal operation (conflicts, throttling); what finally fails is logged by its sink.
        logger.info(
            "retrying %s (attempt %d) after %s: %s", what, state.attempt_number, type(error).__name__, error
        )

    return Retrying(
        retry=retry_if_exception(is_retryable),
        stop=stop_after_attempt(policy.max_attempts) | _OutOfTime(deadline),
        wait=wait_exponential_jitter(
            multiplier=policy.initial_wait_s, max=policy.max_wait_s, jitter=policy.jitter_s
        ),
        before_sleep=log_retry,
        reraise=True,
    )
