"""AWS clients, made once per process: endpoint override for the local servers, no hidden retries.

botocore's own retries are off (one attempt) because every retry goes through projector.retry, which
knows the Lambda deadline; timeouts are short so a dead endpoint fails fast into that policy.
"""

from __future__ import annotations

import json
from functools import lru_cache
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

from projector.retry.transient import TruncatedResponseError

if TYPE_CHECKING:
    from projector.config.settings import Settings

CONNECT_TIMEOUT_S = 3
READ_TIMEOUT_S = 10


JSON_SERVICES = frozenset({"dynamodb", "dynamodbstreams"})
LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1"})

__all__ = [
    "TruncatedResponseError",
    "dynamodb_client",
    "reject_truncated_json",
    "s3_client",
    "streams_client",
]


def reject_truncated_json(http_response: Any, model: Any, **_: Any) -> None:
    """botocore turns an unparsable body into ``{'message': ...}`` and a missing one into ``{}``; for a
    GetRecords or Scan that reads as "no records, end of shard/segment". Make it a retryable error."""
    if http_response.status_code != 200:
        return
    body = http_response.content
    try:
        json.loads(body)
    except ValueError:
        raise TruncatedResponseError(operation=model.name, size=len(body or b"")) from None


@lru_cache(maxsize=8)
def _session_client(service: str, region: str, endpoint: str | None) -> Any:
    import boto3
    from botocore.config import Config

    config = Config(
        region_name=region,
        retries={"max_attempts": 1, "mode": "standard"},
        connect_timeout=CONNECT_TIMEOUT_S,
        read_timeout=READ_TIMEOUT_S,
        max_pool_connections=32,
    )
    session = boto3.session.Session()
    key: str | None = None
    if endpoint and urlparse(endpoint).hostname in LOOPBACK and session.get_credentials() is None:
        key = "local"  # the local servers accept any key; a new machine has none configured, and needs none
    client = session.client(  # type: ignore[call-overload]  # the service name is a str, not one of the stubs' literals
        service, endpoint_url=endpoint, config=config, aws_access_key_id=key, aws_secret_access_key=key
    )
    if service in JSON_SERVICES:
        client.meta.events.register(
            f"after-call.{client.meta.service_model.service_id.hyphenize()}", reject_truncated_json
        )
    return client


def dynamodb_client(settings: Settings) -> Any:
    return _session_client("dynamodb", settings.region, settings.dynamodb_endpoint)


def streams_client(settings: Settings) -> Any:
    return _session_client("dynamodbstreams", settings.region, settings.dynamodb_endpoint)


def s3_client(settings: Settings) -> Any:
    return _session_client("s3", settings.region, None)
