"""The Lambda handler as the integration tests call it: a context with a deadline, and one call."""

from __future__ import annotations

import time
from typing import Any

from projector.handler import lambda_handler
from tests.support.streams import event


class LambdaContext:
    """The part of Lambda's context object the handler reads: the time left before the deadline."""

    def __init__(self, seconds: float = 60) -> None:
        self.end = time.monotonic() + seconds

    def get_remaining_time_in_millis(self) -> int:
        return int((self.end - time.monotonic()) * 1000)


def handle(records: list[dict[str, Any]], seconds: float = 60) -> dict[str, Any]:
    """One Lambda invocation on ``records`` (DynamoDB JSON, as GetRecords returns them)."""
    return lambda_handler(event(records), LambdaContext(seconds))
