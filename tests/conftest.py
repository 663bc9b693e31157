"""Shared test fixtures: the local servers (started on demand) and per-test isolation.

- Everything under tests/integration is marked `integration`, under tests/unit `unit`.
- When the selected tests include an integration test, OpenSearch (127.0.0.1:9200) and the moto
  launcher (127.0.0.1:5000) are started if nothing of the right kind answers yet (first run
  downloads and caches OpenSearch under .cache/). A unit-only run starts nothing. Servers started
  here keep running after the session (`scripts/services stop` stops them: they have pid files).
- `settings_env` gives a test its own index prefix, tables, dead-letter folder and state folder
  through PROJECTOR_* variables, and removes the indexes, templates and tables afterwards.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

logger = logging.getLogger(__name__)

OPENSEARCH_URL = "http://127.0.0.1:9200"
MOTO_URL = "http://127.0.0.1:5000"
REGION = "us-east-1"

# Dummy credentials for the whole session, so no client can ever sign a request for real AWS.
for _name, _value in (
    ("AWS_ACCESS_KEY_ID", "testing"),
    ("AWS_SECRET_ACCESS_KEY", "testing"),
    ("AWS_DEFAULT_REGION", REGION),
):
    os.environ.setdefault(_name, _value)


# Test files that must not share the machine with other test processes: they restart the shared
# OpenSearch, start Toxiproxy or the Lambda emulator (one per machine), or check what listens where.
# `make test` runs everything else in parallel processes first (pytest-xdist), then these one by one.
SERIAL_FILES = frozenset(
    {
        "test_export_lambda.py",
        "test_handler.py",
        "test_logs.py",
        "test_package.py",
        "test_runner_rie.py",
        "test_scripts_venv.py",
        "test_servers.py",
        "test_soak_regressions.py",
        "test_soak_smoke.py",
        "test_traces.py",
    }
)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark tests by folder (tests/integration -> integration, tests/unit -> unit), and the serial ones."""
    for item in items:
        parts = item.path.parts
        if "integration" in parts:
            item.add_marker(pytest.mark.integration)
        elif "unit" in parts:
            item.add_marker(pytest.mark.unit)
        if item.path.name in SERIAL_FILES:
            item.add_marker(pytest.mark.serial)


# ------------------------------------------------------------------------------------------ servers


def _ensure(name: str) -> None:
    from devservers import registry
    from devservers.process import ServiceError

    try:
        registry.get(name).ensure()
    except ServiceError as error:
        pytest.fail(f"local server {name} unavailable: {error}", pytrace=False)


@pytest.fixture(scope="session")
def opensearch_server() -> str:
    """OpenSearch on 127.0.0.1:9200, started (and fetched once) when nothing answers there."""
    _ensure("opensearch")
    return OPENSEARCH_URL


@pytest.fixture(scope="session")
def moto_server() -> str:
    """The moto launcher on 127.0.0.1:5000 (serialised, journaled transactions), started if needed."""
    _ensure("moto")
    return MOTO_URL


@pytest.fixture(scope="session")
def local_servers(opensearch_server: str, moto_server: str) -> dict[str, str]:
    """Both default servers; their URLs by name."""
    return {"opensearch": opensearch_server, "moto": moto_server}


@pytest.fixture(scope="session", autouse=True)
def _servers_for_integration_tests(request: pytest.FixtureRequest) -> None:
    """Start the servers before any module fixture runs, but only if an integration test is selected."""
    if any(item.get_closest_marker("integration") for item in request.session.items):
        request.getfixturevalue("local_servers")


@pytest.fixture(scope="session")
def opensearch(opensearch_server: str) -> Any:
    """An `opensearchpy.OpenSearch` client on the local server."""
    from opensearchpy import OpenSearch

    client = OpenSearch(hosts=[opensearch_server], timeout=30)
    yield client
    client.close()


def _aws_client(service: str, endpoint: str) -> Any:
    import boto3

    return boto3.client(
        service,
        endpoint_url=endpoint,
        region_name=REGION,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


@pytest.fixture(scope="session")
def dynamodb(moto_server: str) -> Any:
    """A boto3 DynamoDB client on the moto launcher."""
    return _aws_client("dynamodb", moto_server)


@pytest.fixture(scope="session")
def dynamodbstreams(moto_server: str) -> Any:
    """A boto3 DynamoDB Streams client on the moto launcher."""
    return _aws_client("dynamodbstreams", moto_server)


# ---------------------------------------------------------------------------------------- isolation


@dataclass(frozen=True)
class IsolatedEnv:
    """The names one test got from `settings_env` (also set as PROJECTOR_* variables)."""

    index_prefix: str
    source_table: str
    aggregates_table: str
    dead_letters: str
    dead_letters_dir: Path
    state_dir: Path

    @property
    def env(self) -> dict[str, str]:
        """The variables that were set."""
        return _env_for(self)


def _env_for(isolated: IsolatedEnv) -> dict[str, str]:
    return {
        "PROJECTOR_INDEX_PREFIX": isolated.index_prefix,
        "PROJECTOR_SOURCE_TABLE": isolated.source_table,
        "PROJECTOR_AGGREGATES_TABLE": isolated.aggregates_table,
        "PROJECTOR_DEAD_LETTERS": isolated.dead_letters,
        "PROJECTOR_STATE_DIR": str(isolated.state_dir),
        "PROJECTOR_OPENSEARCH_URL": OPENSEARCH_URL,
        "PROJECTOR_OPENSEARCH_AUTH": "none",
        "PROJECTOR_DYNAMODB_ENDPOINT": MOTO_URL,
        "AWS_REGION": REGION,
        "AWS_DEFAULT_REGION": REGION,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
    }


@pytest.fixture
def settings_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[IsolatedEnv]:
    """A unique index prefix (`t<hex8>-`), source and aggregates table names, dead-letter and state
    folders under tmp_path, and the local endpoints, as PROJECTOR_* variables for this test only.

    Afterwards removes every index, alias and template whose name starts with the prefix, and the
    two tables if they were created. Does not start servers by itself (integration tests have them).
    """
    token = uuid.uuid4().hex[:8]
    isolated = IsolatedEnv(
        index_prefix=f"t{token}-",
        source_table=f"orders-{token}",
        aggregates_table=f"aggregates-{token}",
        dead_letters=(tmp_path / "dead-letters").as_uri(),
        dead_letters_dir=tmp_path / "dead-letters",
        state_dir=tmp_path / "state",
    )
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    for name, value in _env_for(isolated).items():
        monkeypatch.setenv(name, value)
    yield isolated
    _drop_opensearch(isolated.index_prefix)
    _drop_tables(isolated.source_table, isolated.aggregates_table)


def _drop_opensearch(prefix: str) -> None:
    """Delete indexes (and so their aliases) and index/legacy/component templates named PREFIX*."""
    from devservers import process

    if not process.port_open(9200):
        return
    from opensearchpy import OpenSearch
    from opensearchpy.exceptions import NotFoundError, OpenSearchException

    client = OpenSearch(hosts=[OPENSEARCH_URL], timeout=30)
    pattern = f"{prefix}*"
    try:
        indexes = client.indices.get(index=pattern, expand_wildcards="all", ignore_unavailable=True)
        for index in indexes:
            client.indices.delete(index=index, ignore_unavailable=True)
        for path in ("_index_template", "_template", "_component_template"):
            try:
                found = client.transport.perform_request("GET", f"/{path}/{pattern}")
            except NotFoundError:
                continue
            for name in _template_names(path, found):
                with contextlib.suppress(NotFoundError):
                    client.transport.perform_request("DELETE", f"/{path}/{name}")
    except OpenSearchException as error:
        logger.warning("cleanup of OpenSearch %s failed: %s", pattern, error)
    finally:
        client.close()


def _template_names(path: str, found: Any) -> list[str]:
    if path == "_index_template":
        return [entry["name"] for entry in found.get("index_templates", [])]
    if path == "_component_template":
        return [entry["name"] for entry in found.get("component_templates", [])]
    return list(found)


def _drop_tables(*names: str) -> None:
    from devservers import process

    if not process.port_open(5000):
        return
    client = _aws_client("dynamodb", MOTO_URL)
    for name in names:
        try:
            client.delete_table(TableName=name)
        except client.exceptions.ResourceNotFoundException:
            pass
        except Exception as error:  # cleanup must not hide the test's own result
            logger.warning("cleanup of table %s failed: %s", name, error)


@pytest.fixture
def pipeline(settings_env: Any, dynamodb: Any, dynamodbstreams: Any) -> Any:
    """The example projections set up (source table with its stream, indexes, aggregates table) for
    calls of the Lambda handler (tests/support/handler.py); the cached engine is reset around it."""
    from projector.handler import reset_runtime, runtime
    from projector.setup import setup

    reset_runtime()
    setup(runtime(), with_source_table=True)
    yield settings_env
    reset_runtime()
