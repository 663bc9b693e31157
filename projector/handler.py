"""The Lambda entry point: `projector.handler.lambda_handler` behind a DynamoDB stream.

It applies what it can in stream order and answers with the first record it could not apply
(``batchItemFailures``), so Lambda resends from exactly there. It does not raise when OpenSearch or
DynamoDB fails; it raises only for a wrong configuration, an event that is not a stream batch, or a
record without a sequence number that could not be dead-lettered (``UnnamedFailureError``: Lambda
resends the whole batch). The path of a record: docs/architecture.md.

The first batch of a cold start checks every projection's key attributes against the source table's key
(one DescribeTable, remembered until the next cold start). A projection keyed by another attribute fails
every batch with one error naming it and both key lists, instead of applying or dead-lettering anything:
the mismatch is a deployment error that concerns every record, not a bad record, so dead-lettering would
bury it under one letter per record (all superseded by the rebuild the fix needs anyway) while failing
keeps every projection exactly at the failed record (nothing skipped, nothing applied out of order),
fires the function's Errors alarm at the first batch, and resumes by itself once the fixed code is
deployed, as long as that happens within the mapping's MaximumRecordAgeInSeconds.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from projector.config.exceptions import ConfigurationError
from projector.logsafe import silence_body_loggers
from projector.observability_env import in_lambda
from projector.retry.deadline import Deadline
from projector.runtime import Runtime

logger = logging.getLogger(__name__)

_runtime: Runtime | None = None
_key_check: ConfigurationError | bool | None = None  # None: not done this cold start; True: passed


def runtime() -> Runtime:
    """The process-wide engine, built on the first invocation (settings are validated once)."""
    global _runtime
    if _runtime is None:
        silence_body_loggers()
        _runtime = Runtime()
    return _runtime


def reset_runtime() -> None:
    """Forget the cached engine (tests and the local runner change the environment between runs)."""
    global _runtime, _key_check
    _runtime = None
    _key_check = None


def check_projection_keys(engine: Runtime) -> None:
    """Once per cold start: raise if a projection's key attributes are not the source table's key."""
    global _key_check
    if _key_check is None:
        from projector.setup import check_source_key

        try:
            check_source_key(engine)
            _key_check = True
        except ConfigurationError as error:
            _key_check = error
        except Exception as error:  # cannot tell (no DescribeTable permission, a fault): do not block
            logger.warning(
                "projection key attributes not checked against %s: %s: %s",
                engine.settings.source_table,
                type(error).__name__,
                error,
            )
            _key_check = True
    if isinstance(_key_check, ConfigurationError):
        logger.error("misconfigured projection, batch not applied: %s", _key_check)
        raise _key_check


def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    from projector import observability

    if isinstance(event, dict) and isinstance(event.get("backfill"), dict):
        # A step of the backfill state machine (infra/template.yaml): same function, same settings.
        from projector.backfill_handler import lambda_handler as backfill_handler

        if in_lambda():
            observability.configure_lambda_logging()
        return backfill_handler(event["backfill"], context)
    records = event.get("Records") if isinstance(event, dict) else None
    if not isinstance(records, list):
        raise ConfigurationError("the event is not a DynamoDB stream batch (no 'Records' list)")
    if not in_lambda():  # tests, the local runner, benchmarks: their own logging
        return _handle(records, context)
    observability.configure_lambda_logging()
    if hasattr(context, "aws_request_id"):
        return _traced_handler(records, context)
    return _handle(records, context)


def _handle(records: list[Any], context: Any) -> dict[str, Any]:
    from projector.observability import batch_logger, correlation_keys, metrics, record_batch

    started = time.perf_counter()
    batch_logger.append_keys(**correlation_keys(records))
    try:
        engine = runtime()
        check_projection_keys(engine)
        deadline = Deadline.from_context(context, engine.settings.deadline_margin_ms)
        outcome = engine.stream_applier.apply(records, deadline)
        try:
            record_batch(outcome, (time.perf_counter() - started) * 1000)
            metrics.flush_metrics()
        except Exception as error:  # metrics must never turn an applied batch into a retried one
            batch_logger.warning("metrics not written: %s", type(error).__name__)
        return outcome.response()
    finally:
        batch_logger.remove_keys(["event_source_arn", "first_sequence", "last_sequence", "records"])


def _wrap() -> Callable[[list[Any], Any], dict[str, Any]]:
    """``_handle`` under Powertools' Lambda context (request id, cold start) and X-Ray handler segment.

    The event is never logged (``log_event=False``): it holds item images. Built on first use so that
    importing this module configures nothing outside Lambda.
    """
    from projector.observability import batch_logger, tracer

    wrapped = batch_logger.inject_lambda_context(log_event=False, clear_state=True)(_handle)
    traced: Callable[[list[Any], Any], dict[str, Any]] = tracer.capture_lambda_handler(
        capture_response=False
    )(wrapped)
    return traced


def _traced_handler(records: list[Any], context: Any) -> dict[str, Any]:
    global _wrapped
    if _wrapped is None:
        _wrapped = _wrap()
    return _wrapped(records, context)


_wrapped: Callable[[list[Any], Any], dict[str, Any]] | None = None
