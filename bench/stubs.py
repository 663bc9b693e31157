"""An OpenSearch client that only collects: the real sink runs (read, fold, serialise, bulk lines) with no I/O.

``mget`` answers "not found" for every id (an empty index), ``bulk`` answers 201 for every action line and
keeps the payload's size, ``indices.get_alias`` names one physical index behind both aliases.
"""

from __future__ import annotations

from typing import Any


class _Indices:
    def __init__(self, prefix: str) -> None:
        self.prefix = prefix

    def get_alias(self, name: str = "", **_: Any) -> dict[str, Any]:
        base = name.split(",")[-1]
        return {f"{base}-g000001": {"aliases": {f"{base}-write": {}, base: {}}}}


class CollectingClient:
    """Just enough of ``opensearchpy.OpenSearch`` for ``OpenSearchSink.apply``."""

    def __init__(self, prefix: str = "") -> None:
        self.indices = _Indices(prefix)
        self.bulk_bytes = 0
        self.bulk_actions = 0
        self.requests = 0

    def mget(self, index: str, body: dict[str, Any], **_: Any) -> dict[str, Any]:
        self.requests += 1
        return {"docs": [{"_index": index, "_id": item_id, "found": False} for item_id in body["ids"]]}

    def bulk(self, body: bytes, **_: Any) -> dict[str, Any]:
        self.requests += 1
        self.bulk_bytes += len(body)
        lines = body.count(b"\n") // 2
        self.bulk_actions += lines
        return {"errors": False, "items": [{"index": {"status": 201}}] * lines}
