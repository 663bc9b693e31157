"""Structured logs and CloudWatch embedded-metric-format metrics (Powertools), one line per batch.

Only counts, sequence numbers and durations are logged at INFO: item contents never are.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit

if TYPE_CHECKING:
    from projector.pipeline.outcome import BatchOutcome

SERVICE = os.environ.get("POWERTOOLS_SERVICE_NAME", "projector")
NAMESPACE = os.environ.get("POWERTOOLS_METRICS_NAMESPACE", "projector")

batch_logger = Logger(service=SERVICE, level=os.environ.get("POWERTOOLS_LOG_LEVEL", "INFO"))
metrics = Metrics(namespace=NAMESPACE, service=SERVICE)


def record_batch(outcome: BatchOutcome, duration_ms: float) -> None:
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
