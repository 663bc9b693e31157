"""OpenSearch document projections: client, exact JSON, index lifecycle and the versioned bulk sink."""

from __future__ import annotations

from projector.sinks.opensearch.client import opensearch_client
from projector.sinks.opensearch.types import (
    META_FIELD,
    IndexDescription,
    IndexNames,
    StoredDocument,
    WriteLimits,
)
from projector.sinks.opensearch.writer import OpenSearchSink

__all__ = [
    "META_FIELD",
    "IndexDescription",
    "IndexNames",
    "OpenSearchSink",
    "StoredDocument",
    "WriteLimits",
    "opensearch_client",
]
