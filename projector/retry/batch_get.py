"""Consistent BatchGetItem reads that ask again for the keys DynamoDB left unprocessed.

BatchGetItem may answer part of a request and name the rest in ``UnprocessedKeys``; those are asked
for again under the one retry policy (with backoff), like a transient error, until every key is read.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from projector.exceptions import ProjectorError
from projector.retry.deadline import Deadline
from projector.retry.policy import retrying
from projector.retry.transient import is_transient

BATCH_GET_KEYS = 100  # DynamoDB's limit of keys per BatchGetItem


class Unprocessed(ProjectorError):
    """BatchGetItem left keys unprocessed: back off and ask again."""


def batch_get_consistent(
    batch_get_item: Callable[..., dict[str, Any]],
    table: str,
    keys: Sequence[dict[str, Any]],
    on_item: Callable[[dict[str, Any]], None],
    deadline: Deadline,
    what: str,
) -> None:
    """Read ``keys`` of ``table`` consistently, 100 a request, calling ``on_item`` with each raw item found.

    ``batch_get_item`` sends one request (``client.batch_get_item`` or a counting wrapper of it).
    """
    for start in range(0, len(keys), BATCH_GET_KEYS):
        pending = list(keys[start : start + BATCH_GET_KEYS])

        def once() -> None:
            nonlocal pending
            response = batch_get_item(RequestItems={table: {"Keys": pending, "ConsistentRead": True}})
            for raw in response.get("Responses", {}).get(table, []):
                on_item(raw)
            pending = response.get("UnprocessedKeys", {}).get(table, {}).get("Keys", [])
            if pending:
                raise Unprocessed(f"{len(pending)} keys unprocessed")

        retrying(deadline, lambda error: isinstance(error, Unprocessed) or is_transient(error), what=what)(
            once
        )
