"""``projector run --handler soak.replay:handler``: the real handler, with batches re-delivered at random.

Before a batch, with probability ``SOAK_REPLAY_OLD`` (default 0.15), a slice of an *earlier* batch (up
to the last 64) is sent to the real handler again: a late duplicate after newer changes were applied.
After a batch, with probability ``SOAK_REPLAY_DUP`` (default 0.1), the same batch is delivered twice.
The answers to re-deliveries are ignored (only the real batch's answer goes back to the runner). Each
re-delivery appends one line ``{"kind", "records"}`` to ``SOAK_REPLAY_LOG`` (survives a SIGKILL).
"""

from __future__ import annotations

import json
import os
import random
from collections import deque
from typing import Any

_history: deque[list[dict[str, Any]]] = deque(maxlen=64)
_rng = random.Random(int(os.environ.get("SOAK_SEED", "0")) * 7919 + os.getpid())


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    from projector.handler import lambda_handler

    records = list(event.get("Records") or [])
    if _history and _rng.random() < float(os.environ.get("SOAK_REPLAY_OLD", "0.15")):
        old = _rng.choice(list(_history))
        start = _rng.randrange(len(old))
        chunk = old[start : start + _rng.randint(1, len(old))]
        _redeliver("old", chunk, context)
    response = lambda_handler(event, context)
    if records and _rng.random() < float(os.environ.get("SOAK_REPLAY_DUP", "0.1")):
        _redeliver("duplicate", records, context)
    if records:
        _history.append(records)
    return response


def _redeliver(kind: str, records: list[dict[str, Any]], context: Any) -> None:
    from projector.handler import lambda_handler

    try:
        lambda_handler({"Records": records}, context)
    except Exception:  # a re-delivery is ours, its failure must not fail the real batch
        return
    path = os.environ.get("SOAK_REPLAY_LOG")
    if path:
        line = json.dumps({"kind": kind, "records": len(records)}) + "\n"
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, line.encode())
        finally:
            os.close(fd)
