"""The bench's own names on the local servers, as PROJECTOR_* variables, removed again at the end.

Every run gets a unique index prefix, source and aggregates tables and a state folder, so a run never
touches the demo's or the tests' data and can run beside them (loopback servers only).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.harness import log

OPENSEARCH_URL = "http://127.0.0.1:9200"
MOTO_URL = "http://127.0.0.1:5000"
REGION = "us-east-1"
DOCUMENTS_MODULE = "bench.projections.documents"
AGGREGATES_MODULE = "bench.projections.aggregates"


@dataclass(frozen=True, slots=True)
class BenchEnv:
    """Names of one run; ``variables`` are set in os.environ while the run lasts."""

    token: str
    folder: Path

    @property
    def index_prefix(self) -> str:
        return f"bench{self.token}-"

    @property
    def source_table(self) -> str:
        return f"bench-{self.token}-orders"

    @property
    def aggregates_table(self) -> str:
        return f"bench-{self.token}-aggregates"

    def variables(self, projections: str = DOCUMENTS_MODULE) -> dict[str, str]:
        return {
            "PROJECTOR_OPENSEARCH_URL": OPENSEARCH_URL,
            "PROJECTOR_OPENSEARCH_AUTH": "none",
            "PROJECTOR_DYNAMODB_ENDPOINT": MOTO_URL,
            "PROJECTOR_SOURCE_TABLE": self.source_table,
            "PROJECTOR_AGGREGATES_TABLE": self.aggregates_table,
            "PROJECTOR_INDEX_PREFIX": self.index_prefix,
            "PROJECTOR_DEAD_LETTERS": (self.folder / "dead-letters").as_uri(),
            "PROJECTOR_STATE_DIR": str(self.folder / "state"),
            "PROJECTOR_PROJECTIONS": projections,
            "AWS_REGION": REGION,
            "AWS_DEFAULT_REGION": REGION,
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "POWERTOOLS_METRICS_NAMESPACE": "projector-bench",
        }

    def use(self, projections: str) -> None:
        """Point the engine at ``projections`` (a module of bench.projections) and forget the old engine."""
        from projector.handler import reset_runtime

        os.environ.update(self.variables(projections))
        reset_runtime()


@contextlib.contextmanager
def bench_env() -> Iterator[BenchEnv]:
    """A fresh set of names, exported; everything made under them is removed afterwards."""
    saved = dict(os.environ)
    folder = Path(tempfile.mkdtemp(prefix="projector-bench-"))
    env = BenchEnv(token=uuid.uuid4().hex[:8], folder=folder)
    os.environ.pop("AWS_PROFILE", None)
    os.environ.update(env.variables())
    try:
        yield env
    finally:
        cleanup(env)
        os.environ.clear()
        os.environ.update(saved)
        shutil.rmtree(folder, ignore_errors=True)


def ensure_servers() -> None:
    """Start the local OpenSearch and moto launcher if nothing of their kind answers (idempotent)."""
    from devservers import registry

    for name in registry.DEFAULT:
        registry.get(name).ensure()


def opensearch_client(timeout: float = 120) -> Any:
    """A plain opensearch-py client, as a baseline would make it."""
    from opensearchpy import OpenSearch

    return OpenSearch(hosts=[OPENSEARCH_URL], timeout=timeout)


def dynamodb_client() -> Any:
    import boto3
    from botocore.config import Config

    return boto3.client(
        "dynamodb",
        endpoint_url=MOTO_URL,
        region_name=REGION,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        config=Config(
            retries={"max_attempts": 3, "mode": "standard"}, read_timeout=120, max_pool_connections=16
        ),
    )


def drop_indexes(client: Any, pattern: str) -> None:
    indexes = client.indices.get(index=pattern, expand_wildcards="all", ignore_unavailable=True)
    for index in indexes:
        client.indices.delete(index=index, ignore_unavailable=True)


def cleanup(env: BenchEnv) -> None:
    """Remove every index and template named with the run's prefix, and its tables."""
    from devservers import process

    if process.port_open(9200):
        try:
            client = opensearch_client(timeout=60)
            drop_indexes(client, f"{env.index_prefix}*")
            found = client.transport.perform_request(
                "GET", f"/_index_template/{env.index_prefix}*", params={"ignore": 404}
            )
            for entry in (found or {}).get("index_templates", []):
                client.indices.delete_index_template(name=entry["name"], ignore=404)
            client.close()
        except Exception as error:  # cleanup must not hide the results
            log(f"cleanup of indexes {env.index_prefix}* failed: {error}")
    if process.port_open(5000):
        client = dynamodb_client()
        for table in (env.source_table, env.aggregates_table):
            try:
                client.delete_table(TableName=table)
            except client.exceptions.ResourceNotFoundException:
                pass
            except Exception as error:
                log(f"cleanup of table {table} failed: {error}")
