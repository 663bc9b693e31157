"""DynamoDB requests of the aggregates, counted, and never started once the deadline has passed."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from projector.retry.policy import DeadlineExceeded

if TYPE_CHECKING:
    from projector.retry.deadline import Deadline

MAX_TRANSACTION_ACTIONS = 100  # DynamoDB's limit of actions per TransactWriteItems


class Calls:
    """Sends DynamoDB requests, counting them, and never starts one once the deadline has passed."""

    def __init__(self, client: Any, deadline: Deadline) -> None:
        self.client = client
        self.deadline = deadline
        self.count = 0

    def __call__(self, operation: str, **kwargs: Any) -> dict[str, Any]:
        if self.deadline.expired:
            raise DeadlineExceeded(f"no time left for {operation}")
        self.count += 1
        answer: dict[str, Any] = getattr(self.client, operation)(**kwargs)
        return answer
