"""The OpenSearch client, made once per process: TLS verified, SigV4 when asked, no hidden retries.

opensearch-py's own retries are off because every retry goes through projector.retry, which knows
the Lambda deadline and retries only what is safe to retry.
"""

from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

import certifi
from opensearchpy import OpenSearch, Urllib3HttpConnection

if TYPE_CHECKING:
    from projector.config.settings import Settings

logger = logging.getLogger(__name__)

POOL_MAXSIZE = 16

_clients: dict[tuple[Any, ...], OpenSearch] = {}
_lock = threading.Lock()


def opensearch_client(settings: Settings) -> OpenSearch:
    """The process-wide client for ``settings`` (one per endpoint, auth, region and timeout)."""
    key = (
        settings.opensearch_url,
        settings.opensearch_auth,
        settings.opensearch_service,
        settings.region,
        settings.opensearch_timeout_s,
        settings.opensearch_compress,
    )
    with _lock:
        client = _clients.get(key)
        if client is None:
            client = _clients[key] = build_client(settings)
        return client


def build_client(settings: Settings) -> OpenSearch:
    """A new client for ``settings``; prefer :func:`opensearch_client`, which reuses connections."""
    url = urlparse(settings.opensearch_url)
    secure = url.scheme == "https"
    port = url.port or (443 if secure else 80)
    host: dict[str, Any] = {"host": url.hostname, "port": port, "scheme": url.scheme}
    if url.path and url.path != "/":
        host["url_prefix"] = url.path
    options: dict[str, Any] = {
        "hosts": [host],
        "use_ssl": secure,
        "verify_certs": True,
        "connection_class": Urllib3HttpConnection,
        "http_compress": settings.opensearch_compress,
        "timeout": settings.opensearch_timeout_s,
        "max_retries": 0,
        "retry_on_timeout": False,
        "pool_maxsize": POOL_MAXSIZE,
    }
    if secure:
        options["ca_certs"] = certifi.where()
    if settings.opensearch_auth == "sigv4":
        options["http_auth"] = _sigv4_auth(settings)
    logger.debug("opensearch client for %s (auth=%s)", settings.opensearch_url, settings.opensearch_auth)
    return OpenSearch(**options)


class RequestCounter:
    """HTTP requests made through a :class:`CountingClient`: one per call (opensearch-py never retries)."""

    def __init__(self) -> None:
        self.count = 0


class CountingClient:
    """A view of an OpenSearch client that counts the API calls made through it, for one batch."""

    def __init__(self, target: Any, counter: RequestCounter) -> None:
        self._target = target
        self._counter = counter

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._target, name)
        if name in ("indices", "cluster", "cat"):
            return CountingClient(attribute, self._counter)
        if not callable(attribute):
            return attribute

        def call(*args: Any, **kwargs: Any) -> Any:
            self._counter.count += 1
            return attribute(*args, **kwargs)

        return call


def _sigv4_auth(settings: Settings) -> Any:
    import boto3
    from opensearchpy import Urllib3AWSV4SignerAuth

    credentials = boto3.Session().get_credentials()
    if credentials is None:
        raise RuntimeError("PROJECTOR_OPENSEARCH_AUTH=sigv4 but boto3 found no AWS credentials")
    return Urllib3AWSV4SignerAuth(credentials, settings.region, settings.opensearch_service)
