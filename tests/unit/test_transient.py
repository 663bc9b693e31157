"""The one transient-error rule: AWS and OpenSearch errors, and one bulk item's answer."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError, ParamValidationError
from opensearchpy.exceptions import ConnectionError as TransportConnectionError
from opensearchpy.exceptions import ConnectionTimeout, SSLError, TransportError

from projector.retry.transient import (
    TRANSIENT_REASONS,
    TruncatedResponseError,
    error_code,
    is_transient,
    is_transient_answer,
)
from projector.sinks.opensearch.errors import PendingItems, is_retryable

pytestmark = pytest.mark.unit


def client_error(code: str, status: int = 400) -> ClientError:
    return ClientError({"Error": {"Code": code}, "ResponseMetadata": {"HTTPStatusCode": status}}, "Op")


@pytest.mark.parametrize(
    ("error", "transient"),
    [
        (client_error("ProvisionedThroughputExceededException"), True),
        (client_error("TransactionConflictException"), True),
        (client_error("Anything", status=503), True),
        (client_error("ValidationException"), False),
        (client_error("AccessDeniedException"), False),
        (client_error("ResourceNotFoundException"), False),
        (EndpointConnectionError(endpoint_url="http://127.0.0.1:1"), True),
        (TruncatedResponseError(operation="GetRecords", size=3), True),
        (ParamValidationError(report="bad"), False),
        (TransportConnectionError("N/A", "refused", None), True),
        (ConnectionTimeout("TIMEOUT", "timed out", None), True),
        (SSLError("N/A", "certificate verify failed", None), False),
        (TransportError(429, "too_many_requests", {}), True),
        (TransportError(502, "bad gateway", {}), True),
        (TransportError(501, "not implemented", {}), True),
        (TransportError(400, "mapper_parsing_exception", {}), False),
        (TransportError(404, "index_not_found_exception", {}), False),
        (ValueError("a bug"), False),
    ],
)
def test_what_may_succeed_later(error: BaseException, transient: bool) -> None:
    assert is_transient(error) is transient
    assert is_retryable(error) is transient  # the OpenSearch sink adds only its own pending items


def test_the_sink_also_retries_its_pending_items() -> None:
    assert is_retryable(PendingItems(2, "429"))
    assert not is_transient(PendingItems(2, "429"))


@pytest.mark.parametrize(
    ("status", "error_type", "transient"),
    [
        (429, None, True),
        (503, None, True),
        (500, "whatever", True),
        (400, "es_rejected_execution_exception", True),
        (400, "mapper_parsing_exception", False),
        (409, "version_conflict_engine_exception", False),
        (501, None, False),  # one item: only the statuses OpenSearch uses for load and failure
    ],
)
def test_one_bulk_items_answer(status: int, error_type: str | None, transient: bool) -> None:
    assert is_transient_answer(status, error_type) is transient


def test_error_codes_and_cancellation_reasons() -> None:
    assert error_code(client_error("ThrottlingException")) == "ThrottlingException"
    assert error_code(ValueError("x")) is None
    assert {"TransactionConflict", "ThrottlingError", "None"} <= TRANSIENT_REASONS
    assert "ConditionalCheckFailed" not in TRANSIENT_REASONS
