"""Logs, metrics and traces in Lambda: one Powertools configuration for every engine logger.

In Lambda every ``projector.*`` logger writes through the Powertools handler as JSON lines carrying the
invocation's correlation keys (request id, stream ARN, first and last sequence number, and the
projection while a sink runs). Locally (CLI, tests) nothing here touches logging: people keep the CLI's
readable lines. Only counts, field paths, hashes, sequence numbers and durations are logged at any
level: item contents never are (``projector.logsafe.loggable`` cuts an error text down to its kind).
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator, Sequence
from typing import Any, Protocol

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit

from projector.observability_env import ProjectionFilter, in_lambda

SERVICE = os.environ.get("POWERTOOLS_SERVICE_NAME", "projector")
NAMESPACE = os.environ.get("POWERTOOLS_METRICS_NAMESPACE", "projector")
ENGINE_LOGGER = "projector"

__all__ = [
    "BatchSummary",
    "batch_logger",
    "configure_lambda_logging",
    "correlation_keys",
    "in_lambda",
    "metrics",
    "record_batch",
    "subsegment",
    "tracer",
]


class BatchSummary(Protocol):
    """What a batch's log line and metrics need (``projector.pipeline.outcome.BatchOutcome`` has it)."""

    records: int
    applied: int
    stale: int
    dead_lettered: int
    expired_deletes: int
    gap_reads: int
    first_failed: int | None
    max_lag_s: float | None

    def summary(self) -> dict[str, Any]: ...


class _PlainLogger(logging.LoggerAdapter[logging.Logger]):
    """Outside Lambda: the batch summary is an ordinary engine log line; correlation keys are a no-op."""

    def append_keys(self, **_: Any) -> None:
        return None

    def remove_keys(self, _: Any) -> None:
        return None


# A Powertools Logger attaches a stdout JSON handler to the logger named after the service: only in
# Lambda, so that `projector run` (which calls the handler in-process) keeps the CLI's readable lines.
batch_logger: Any = (
    Logger(service=SERVICE, level=os.environ.get("POWERTOOLS_LOG_LEVEL", "INFO"))
    if in_lambda()
    else _PlainLogger(logging.getLogger("projector.batch"), {})
)
metrics = Metrics(namespace=NAMESPACE, service=SERVICE)
# Disabled outside Lambda and by POWERTOOLS_TRACE_DISABLED=true (the template's Tracing parameter).
# botocore is patched: DynamoDB transactions, gap and state reads each get a subsegment.
tracer = Tracer(service=SERVICE, patch_modules=("botocore",))


def _trace_opensearch() -> None:
    """One subsegment per OpenSearch request (``opensearch POST /prefix-orders-g000001/_bulk``).

    X-Ray's httplib patch misses urllib3 2 (it bypasses ``http.client``'s request path), so the
    transport is wrapped instead. The name carries the method and path, never a body.
    """
    from opensearchpy import Transport

    if getattr(Transport.perform_request, "_projector_traced", False):
        return
    original = Transport.perform_request

    def perform_request(self: Any, method: str, url: str, *args: Any, **kwargs: Any) -> Any:
        with subsegment(f"opensearch {method} {url.split('?', 1)[0]}"):
            return original(self, method, url, *args, **kwargs)

    perform_request._projector_traced = True  # type: ignore[attr-defined]
    Transport.perform_request = perform_request  # type: ignore[method-assign]


if not tracer.disabled:
    from aws_xray_sdk.core import xray_recorder

    xray_recorder.configure(context_missing="IGNORE_ERROR")  # a thread without a segment: untraced, no error
    _trace_opensearch()


def configure_lambda_logging() -> None:
    """Route every ``projector.*`` logger through the Powertools handler (JSON, correlation keys).

    POWERTOOLS_SERVICE_NAME is the stack name in AWS, so the Powertools logger is not an ancestor of the
    module loggers: its handler is attached to the ``projector`` logger, at the Powertools level (Lambda's
    ApplicationLogLevel wins over POWERTOOLS_LOG_LEVEL), without propagation to the runtime's root logger.
    """
    engine = logging.getLogger(ENGINE_LOGGER)
    handler = batch_logger.registered_handler
    if not any(isinstance(existing, ProjectionFilter) for existing in handler.filters):
        handler.addFilter(ProjectionFilter())
    if engine is not batch_logger._logger and handler not in engine.handlers:
        engine.addHandler(handler)
    engine.setLevel(batch_logger.log_level)
    engine.propagate = False
    # opensearch-py logs every request at INFO (one line per mget and bulk); its failures (429, 5xx,
    # which the dashboard's metric filters count) are WARNINGs and stay. DEBUG keeps everything.
    library = logging.getLogger("opensearch")
    if engine.getEffectiveLevel() >= logging.INFO and library.level < logging.WARNING:
        library.setLevel(logging.WARNING)


def correlation_keys(records: Sequence[Any]) -> dict[str, Any]:
    """Stream ARN and first/last sequence number of a batch (never anything from the images)."""

    def sequence(record: Any) -> str | None:
        data = record.get("dynamodb") if isinstance(record, dict) else None
        value = data.get("SequenceNumber") if isinstance(data, dict) else None
        return value if isinstance(value, str) else None

    first = records[0] if records else None
    arn = first.get("eventSourceARN") if isinstance(first, dict) else None
    return {
        "event_source_arn": arn if isinstance(arn, str) else None,
        "first_sequence": sequence(first) if records else None,
        "last_sequence": sequence(records[-1]) if records else None,
        "records": len(records),
    }


@contextlib.contextmanager
def subsegment(name: str) -> Iterator[None]:
    """An X-Ray subsegment when tracing is on and a segment is open in this thread; else nothing."""
    if tracer.disabled:
        yield
        return
    from aws_xray_sdk.core import xray_recorder

    if xray_recorder.get_trace_entity() is None:  # a worker thread: the segment lives in the main one
        yield
        return
    with tracer.provider.in_subsegment(name=name[:200]):
        yield


def record_batch(outcome: BatchSummary, duration_ms: float) -> None:
    """Log the batch summary and add its metrics (flushed by the handler after each invocation)."""
    summary: dict[str, Any] = {**outcome.summary(), "duration_ms": round(duration_ms, 1)}
    if outcome.first_failed is not None:
        batch_logger.warning("batch partly applied", extra=summary)
    else:
        batch_logger.info("batch applied", extra=summary)
    metrics.add_metric(name="RecordsApplied", unit=MetricUnit.Count, value=outcome.applied)
    metrics.add_metric(name="RecordsStale", unit=MetricUnit.Count, value=outcome.stale)
    metrics.add_metric(name="DeadLettered", unit=MetricUnit.Count, value=outcome.dead_lettered)
    metrics.add_metric(
        name="RecordsFailed",
        unit=MetricUnit.Count,
        value=0 if outcome.first_failed is None else outcome.records - outcome.first_failed,
    )
    metrics.add_metric(name="TtlDeletes", unit=MetricUnit.Count, value=outcome.expired_deletes)
    metrics.add_metric(name="GapReads", unit=MetricUnit.Count, value=outcome.gap_reads)  # event streams
    metrics.add_metric(name="BatchDuration", unit=MetricUnit.Milliseconds, value=duration_ms)
    if outcome.max_lag_s is not None:
        metrics.add_metric(name="StreamLag", unit=MetricUnit.Milliseconds, value=outcome.max_lag_s * 1000)
