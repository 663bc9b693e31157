"""The one retry policy: exponential backoff with jitter, bounded by attempts and by the Lambda deadline."""

from __future__ import annotations

from projector.retry.deadline import Deadline
from projector.retry.policy import DeadlineExceeded, RetryPolicy, retrying

__all__ = ["Deadline", "DeadlineExceeded", "RetryPolicy", "retrying"]
