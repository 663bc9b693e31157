"""AWS clients, made once per process: endpoint override for the local servers, no hidden retries.

botocore's own retries are off (one attempt) because every retry goes through projector.retry, which
knows the Lambda deadline; timeouts are short so a dead endpoint fails fast into that policy.
"""

from __future__ import annotations

from functools import lru_cache
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from projector.config.settings import Settings

CONNECT_TIMEOUT_S = 3
READ_TIMEOUT_S = 10


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
    return boto3.session.Session().client(service, endpoint_url=endpoint, config=config)


def dynamodb_client(settings: Settings) -> Any:
    return _session_client("dynamodb", settings.region, settings.dynamodb_endpoint)


def streams_client(settings: Settings) -> Any:
    return _session_client("dynamodbstreams", settings.region, settings.dynamodb_endpoint)


def s3_client(settings: Settings) -> Any:
    return _session_client("s3", settings.region, None)
