"""Which DynamoDB errors of the aggregates are worth another attempt, and how errors are reported."""

from __future__ import annotations

from projector.retry.aws import error_code, is_transient_aws_error

# Per-action codes of a cancelled transaction that another attempt can get past.
TRANSIENT_REASONS = frozenset(
    {
        "TransactionConflict",
        "ThrottlingError",
        "ProvisionedThroughputExceeded",
        "None",
    }
)


def is_transient(error: BaseException) -> bool:
    """Capacity, server and connection errors: the same request may succeed later."""
    return is_transient_aws_error(error)


def describe_error(error: BaseException) -> str:
    code = error_code(error)
    text = str(error) or type(error).__name__
    if code:
        return f"{code}: {text}"
    return text if type(error).__name__.startswith("_") else f"{type(error).__name__}: {text}"
