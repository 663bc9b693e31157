"""The one rule for "may the same request succeed later?", for every AWS and OpenSearch caller.

Transient: throttling, server faults, lost connections and answers cut short. Never: validation,
access, a missing resource, a TLS failure. A caller retries what ``is_transient`` says (through
``projector.retry.retrying``) and adds only its own control-flow signals (an unprocessed key, a
pending bulk item); it never keeps a second list of codes.
"""

from __future__ import annotations

import sys

from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectionError,
    HTTPClientError,
    IncompleteReadError,
    ResponseStreamingError,
)

from projector.exceptions import ProjectorError

#: DynamoDB and Streams error codes another attempt can get past.
TRANSIENT_CODES = frozenset(
    {
        "ProvisionedThroughputExceededException",
        "ThrottlingException",
        "RequestLimitExceeded",
        "LimitExceededException",
        "InternalServerError",
        "InternalFailure",
        "ServiceUnavailable",
        "TransactionInProgressException",
        "TransactionConflictException",
    }
)
#: Per-action codes of a cancelled DynamoDB transaction another attempt can get past.
TRANSIENT_REASONS = frozenset(
    {"TransactionConflict", "ThrottlingError", "ProvisionedThroughputExceeded", "None"}
)
#: HTTP statuses of an OpenSearch answer (a whole request or one bulk item) worth sending again.
TRANSIENT_STATUS = frozenset({429, 500, 502, 503, 504})
#: Error types of a bulk item OpenSearch turned away for load, whatever the status says.
REJECTED_TYPES = frozenset(
    {
        "es_rejected_execution_exception",
        "rejected_execution_exception",
        "opensearch_rejected_execution_exception",
    }
)


class TruncatedResponseError(BotoCoreError, ProjectorError):  # type: ignore[misc,unused-ignore]  # botocore: untyped
    """A 200 answer whose JSON body is cut short: botocore would parse it as an empty result.

    Raised by ``projector.clients`` (which checks every DynamoDB and Streams answer); transient here.
    """

    fmt = "{operation}: the answer was cut short ({size} bytes of invalid JSON); retrying is safe"

    def __init__(self, *, operation: str, size: int) -> None:
        BotoCoreError.__init__(self, operation=operation, size=size)


_AWS_NETWORK = (
    ConnectionError,
    HTTPClientError,
    IncompleteReadError,
    ResponseStreamingError,
    TruncatedResponseError,
)


def error_code(error: BaseException) -> str | None:
    """The AWS error code of a ``ClientError`` (``ThrottlingException``); None for anything else."""
    if isinstance(error, ClientError):
        code = error.response.get("Error", {}).get("Code")
        return code if isinstance(code, str) else None
    return None


def is_transient(error: BaseException) -> bool:
    """True when the same request may succeed later (see the module docstring)."""
    if isinstance(error, _AWS_NETWORK):
        return True
    if isinstance(error, ClientError):
        status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
        return error_code(error) in TRANSIENT_CODES or status >= 500
    # An OpenSearch error exists only once opensearch-py is loaded: AWS-only callers never pay for it.
    if "opensearchpy.exceptions" in sys.modules:
        return _is_transient_opensearch(error)
    return False


def is_transient_answer(status: int, error_type: str | None = None) -> bool:
    """One bulk item's answer: retry it alone when OpenSearch was overloaded or failed."""
    return status in TRANSIENT_STATUS or error_type in REJECTED_TYPES


def _is_transient_opensearch(error: BaseException) -> bool:
    from opensearchpy.exceptions import ConnectionError as TransportConnectionError
    from opensearchpy.exceptions import SSLError, TransportError

    if isinstance(error, SSLError):  # a subclass of ConnectionError: a certificate does not heal itself
        return False
    if isinstance(error, TransportConnectionError):
        return True
    if isinstance(error, TransportError):
        status = error.status_code
        return isinstance(status, int) and (status in TRANSIENT_STATUS or status >= 500)
    return False
