"""How a DynamoDB error of the aggregates is reported (which ones are transient: ``projector.retry.transient``)."""

from __future__ import annotations

from projector.retry.transient import error_code


def describe_error(error: BaseException) -> str:
    code = error_code(error)
    text = str(error) or type(error).__name__
    if code:
        return f"{code}: {text}"
    return text if type(error).__name__.startswith("_") else f"{type(error).__name__}: {text}"
