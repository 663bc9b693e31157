"""The Lambda entry point: `projector.handler.lambda_handler` behind a DynamoDB stream.

It applies what it can in stream order and answers with the first record it could not apply
(``batchItemFailures``), so Lambda resends from exactly there. It does not raise when OpenSearch or
DynamoDB fails; it raises only for a wrong configuration or an event that is not a stream batch.
"""

from __future__ import annotations

import time
from typing import Any

from projector.config.exceptions import ConfigurationError
from projector.retry.deadline import Deadline
from projector.runtime import Runtime

_runtime: Runtime | None = None


def runtime() -> Runtime:
    """The process-wide engine, built on the first invocation (settings are validated once)."""
    global _runtime
    if _runtime is None:
        _runtime = Runtime()
    return _runtime


def reset_runtime() -> None:
    """Forget the cached engine (tests and the local runner change the environment between runs)."""
    global _runtime
    _runtime = None


def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    from projector.observability import batch_logger, metrics, record_batch

    if isinstance(event, dict) and isinstance(event.get("backfill"), dict):
        # A step of the backfill state machine (infra/template.yaml): same function, same settings.
        from projector.backfill_handler import lambda_handler as backfill_handler

        return backfill_handler(event["backfill"], context)
    records = event.get("Records") if isinstance(event, dict) else None
    if not isinstance(records, list):
        raise ConfigurationError("the event is not a DynamoDB stream batch (no 'Records' list)")
    started = time.perf_counter()
    engine = runtime()
    deadline = Deadline.from_context(context, engine.settings.deadline_margin_ms)
    outcome = engine.processor.process(records, deadline)
    try:
        record_batch(outcome, (time.perf_counter() - started) * 1000)
        metrics.flush_metrics()
    except Exception as error:  # metrics must never turn an applied batch into a retried one
        batch_logger.warning("metrics not written: %s", error)
    return outcome.response()
