"""scripts/package builds a zip that runs as a Lambda function.

The zip is built for x86_64 (this machine) and CPython 3.12, the runtime the template deploys, when a
python3.12 exists here (else for this interpreter's version, and the test says so in its output). It
is unzipped into a folder that plays /var/task, and run by the Lambda Runtime Interface Emulator with
`python -m awslambdaric projector.handler.lambda_handler` from a fresh virtual environment holding
nothing but awslambdaric: everything else the handler imports must come from the zip. A stream batch
captured from the moto server's real DynamoDB stream is POSTed to the emulator's invoke API, and the
answer and the documents in OpenSearch are checked. A second emulator, pointed at an OpenSearch that
does not answer, shows the handler answering with the first record it could not apply.
"""

from __future__ import annotations

import contextlib
import glob
import json
import os
import shutil
import socket
import subprocess
import sys
import uuid
import zipfile
from collections.abc import Iterator
from decimal import Decimal
from importlib import metadata
from pathlib import Path
from typing import Any

import boto3
import pytest
import requests

from tests.support.polling import wait_until

pytestmark = [pytest.mark.integration, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]
OPENSEARCH = "http://127.0.0.1:9200"
MOTO = "http://127.0.0.1:5000"
REGION = "us-east-1"
DEV_ONLY = (
    "pytest",
    "_pytest",
    "moto",
    "cfnlint",
    "samtranslator",
    "awslambdaric",
    "hypothesis",
    "ruff",
    "devservers",
    "tests",
)


def _python312() -> str | None:
    """A working python3.12 on this machine (pyenv shims exist but may not be active)."""
    candidates = [
        shutil.which("python3.12"),
        *sorted(glob.glob("/root/.pyenv/versions/3.12*/bin/python3.12")),
        "/usr/bin/python3.12",
        "/usr/local/bin/python3.12",
    ]
    for candidate in candidates:
        if not candidate:
            continue
        try:
            result = subprocess.run(
                [candidate, "-c", "import sys, venv; print(sys.version_info[:2])"],
                capture_output=True,
                text=True,
                timeout=30,
                check=False,
            )
        except OSError:
            continue
        if result.returncode == 0 and result.stdout.strip() == "(3, 12)":
            return candidate
    return None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def runtime_python() -> tuple[str, str]:
    """(interpreter for the function's venv, the Python version the zip is built for)."""
    found = _python312()
    if found:
        return found, "3.12"
    print(
        "python3.12 is not available here: building for and running on",
        sys.version.split()[0],
        "(AWS runs the template's python3.12)",
    )
    return sys.executable, f"{sys.version_info.major}.{sys.version_info.minor}"


@pytest.fixture(scope="module")
def package(tmp_path_factory: pytest.TempPathFactory, runtime_python: tuple[str, str]) -> dict[str, Any]:
    out = tmp_path_factory.mktemp("package") / "projector-lambda.zip"
    result = subprocess.run(
        [
            sys.executable,
            str(REPO / "scripts" / "package"),
            "--arch",
            "x86_64",
            "--python-version",
            runtime_python[1],
            "--output",
            str(out),
            "--json",
        ],
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
        cwd=REPO,
    )
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    print(
        f"package: {summary['zipped_bytes'] / 2**20:.1f} MB zipped, "
        f"{summary['unzipped_bytes'] / 2**20:.1f} MB unzipped, {summary['files']} files, "
        f"cp{summary['python_version']} {summary['platform']}"
    )
    return summary


def test_the_zip_holds_the_code_and_runtime_dependencies_only(package: dict[str, Any]) -> None:
    assert package["within_limits"] is True
    assert package["zipped_bytes"] <= 50 * 2**20 and package["unzipped_bytes"] <= 250 * 2**20
    with zipfile.ZipFile(package["zip"]) as archive:
        names = archive.namelist()
        infos = archive.infolist()
    top = {name.split("/")[0] for name in names}
    assert "projector/handler.py" in names
    assert "projections/orders.py" in names
    assert not any("__pycache__" in name or name.endswith((".pyc", ".pyo")) for name in names)
    assert not [name for name in top if name.split("-")[0].lower() in DEV_ONLY]
    assert "bin" not in top
    # boto3 is bundled (pinned), with every other runtime dependency of pyproject.
    distributions = {name.split("-")[0].lower() for name in top if name.endswith(".dist-info")}
    assert {
        "boto3",
        "botocore",
        "opensearch_py",
        "pydantic",
        "pydantic_settings",
        "aws_lambda_powertools",
        "tenacity",
        "click",
        "rich",
    } <= distributions
    boto3_info = next(name for name in top if name.startswith("boto3-") and name.endswith(".dist-info"))
    assert boto3_info == f"boto3-{metadata.version('boto3')}.dist-info"  # the version the tests ran with
    # Compiled dependencies are Linux x86_64 builds for the target CPython.
    tag = "cpython-" + package["python_version"].replace(".", "") + "-x86_64-linux"
    core = [
        name for name in names if name.startswith("pydantic_core/_pydantic_core.") and name.endswith(".so")
    ]
    assert core and all(tag in name for name in core), core
    # Reproducible entries: fixed timestamps.
    assert {info.date_time for info in infos} == {(1980, 1, 1, 0, 0, 0)}


@contextlib.contextmanager
def _emulator(task_root: Path, python: Path, environment: dict[str, str]) -> Iterator[str]:
    """The RIE running the handler from ``task_root``; yields the invoke URL."""
    from devservers.gotools import ensure_rie

    rie = ensure_rie()
    port, api_port = _free_port(), _free_port()
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": os.environ.get("HOME", "/tmp"),
        "PYTHONPATH": str(task_root),  # /var/task: the zip's content comes first, as in Lambda
        "LAMBDA_TASK_ROOT": str(task_root),
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_REGION": REGION,
        "AWS_DEFAULT_REGION": REGION,
        **environment,
    }
    log = task_root.parent / f"rie-{port}.log"
    with open(log, "wb") as sink:
        process = subprocess.Popen(
            [
                str(rie),
                "--log-level",
                "error",
                "--runtime-interface-emulator-address",
                f"127.0.0.1:{port}",
                "--runtime-api-address",
                f"127.0.0.1:{api_port}",
                str(python),
                "-m",
                "awslambdaric",
                "projector.handler.lambda_handler",
            ],
            env=env,
            cwd=task_root,
            stdout=sink,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:

        def listening() -> bool:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return True
            assert process.poll() is None, log.read_text(errors="replace")
            return False

        wait_until(listening, 30, 0.1, "the emulator to start")
        yield f"http://127.0.0.1:{port}/2015-03-31/functions/function/invocations"
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, 15)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, 9)
            process.wait(timeout=10)
        print(log.read_text(errors="replace")[-3000:])


@pytest.fixture(scope="module")
def function_root(
    package: dict[str, Any], runtime_python: tuple[str, str], tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, Path]:
    """(the unzipped package = /var/task, the python of a clean venv holding only awslambdaric)."""
    base = tmp_path_factory.mktemp("function")
    task_root = base / "task"
    with zipfile.ZipFile(package["zip"]) as archive:
        archive.extractall(task_root)
    venv = base / "venv"
    subprocess.run([runtime_python[0], "-m", "venv", str(venv)], check=True, timeout=120)
    python = venv / "bin" / "python"
    ric = f"awslambdaric=={metadata.version('awslambdaric')}"
    result = subprocess.run(
        [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", ric],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    # Nothing of projector's dependencies is in that venv: the handler can only import them from the zip.
    probe = subprocess.run(
        [
            str(python),
            "-c",
            "import importlib.util as u; "
            "print([m for m in ('boto3', 'opensearchpy', 'pydantic', 'projector') if u.find_spec(m)])",
        ],
        capture_output=True,
        text=True,
        check=True,
        cwd=base,
    )
    assert probe.stdout.strip() == "[]"
    return task_root, python


def _orders(suffix: str) -> list[dict[str, Any]]:
    return [
        {
            "order_id": f"ord-{suffix}-1",
            "customer_id": f"cust-{suffix}",
            "status": "PAID",
            "total": Decimal("120.50"),
            "currency": "EUR",
            "created_at": "2024-05-01T12:00:00.000Z",
            "version": 1,
            "items": [
                {"sku": "MUG-BLU-01", "title": "Blue ceramic mug", "qty": 2, "price": Decimal("60.25")}
            ],
        },
        {
            "order_id": f"ord-{suffix}-2",
            "customer_id": f"cust-{suffix}",
            "status": "PENDING",
            "total": Decimal("9.99"),
            "currency": "EUR",
            "created_at": "2024-05-01T13:00:00.000Z",
            "version": 1,
            "note": "gift wrap please",
            "items": [{"sku": "TWL-LIN-03", "title": "Linen tea towel", "qty": 1, "price": Decimal("9.99")}],
        },
    ]


def test_the_zip_runs_in_the_lambda_runtime_emulator(
    local_servers: dict[str, str], settings_env: Any, function_root: tuple[Path, Path]
) -> None:
    """settings_env (tests/conftest.py) gives this test its own index prefix and tables, as PROJECTOR_*
    variables, and removes them afterwards."""
    from projector.config.settings import load_settings
    from projector.runtime import Runtime
    from projector.setup import setup
    from tests.support.streams import capture_records

    suffix = uuid.uuid4().hex[:8]
    prefix, source, aggregates = (
        settings_env.index_prefix,
        settings_env.source_table,
        settings_env.aggregates_table,
    )
    setup(Runtime(load_settings()), with_source_table=True)
    dynamodb = boto3.client("dynamodb", endpoint_url=MOTO, region_name=REGION)
    streams = boto3.client("dynamodbstreams", endpoint_url=MOTO, region_name=REGION)
    table = boto3.resource("dynamodb", endpoint_url=MOTO, region_name=REGION).Table(source)
    task_root, python = function_root
    for order in _orders(suffix):
        table.put_item(Item=order)
    records = capture_records(dynamodb, streams, source)
    assert [r["eventName"] for r in records] == ["INSERT", "INSERT"]
    event = {"Records": records}
    environment = {
        "PROJECTOR_OPENSEARCH_URL": OPENSEARCH,
        "PROJECTOR_OPENSEARCH_AUTH": "none",
        "PROJECTOR_DYNAMODB_ENDPOINT": MOTO,
        "PROJECTOR_SOURCE_TABLE": source,
        "PROJECTOR_AGGREGATES_TABLE": aggregates,
        "PROJECTOR_INDEX_PREFIX": prefix,
        "PROJECTOR_DEAD_LETTERS": settings_env.dead_letters,
        "PROJECTOR_STATE_DIR": str(settings_env.state_dir),
        "POWERTOOLS_SERVICE_NAME": f"pkg-{suffix}",
        "POWERTOOLS_METRICS_NAMESPACE": "projector",
        "AWS_LAMBDA_FUNCTION_TIMEOUT": "60",
    }

    with _emulator(task_root, python, environment) as url:
        answer = requests.post(url, data=json.dumps(event), timeout=120)
        assert answer.status_code == 200, answer.text
        assert answer.json() == {"batchItemFailures": []}
        # A redelivery of the same batch (what Lambda does after a retry) changes nothing.
        again = requests.post(url, data=json.dumps(event), timeout=120)
        assert again.json() == {"batchItemFailures": []}

    requests.post(f"{OPENSEARCH}/{prefix}orders/_refresh", timeout=30).raise_for_status()
    found = requests.post(
        f"{OPENSEARCH}/{prefix}orders/_search", json={"query": {"match_all": {}}, "size": 10}, timeout=30
    ).json()
    documents = {hit["_id"]: hit["_source"] for hit in found["hits"]["hits"]}
    assert set(documents) == {f"ord-{suffix}-1", f"ord-{suffix}-2"}
    assert documents[f"ord-{suffix}-1"]["status"] == "PAID"
    assert Decimal(str(documents[f"ord-{suffix}-1"]["total"])) == Decimal("120.50")
    assert documents[f"ord-{suffix}-2"]["note"] == "gift wrap please"
    text = requests.post(
        f"{OPENSEARCH}/{prefix}orders/_search",
        json={"query": {"match": {"items.title": "ceramic"}}},
        timeout=30,
    ).json()
    assert [hit["_id"] for hit in text["hits"]["hits"]] == [f"ord-{suffix}-1"]
    # The aggregates were written by the function too (read back through the CLI contract).
    cli = subprocess.run(
        [
            str(Path(sys.executable).parent / "projector"),
            "aggregate",
            "customer_totals",
            f"cust-{suffix}",
            "--json",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env=dict(os.environ),  # settings_env's PROJECTOR_* variables
    )
    assert cli.returncode == 0, cli.stderr
    assert json.loads(cli.stdout) == {
        "name": "customer_totals",
        "key": f"cust-{suffix}",
        "order_count": 2,
        "revenue": "130.49",
    }

    # OpenSearch unreachable: the function answers with the first record it could not apply, so
    # Lambda would resend from there (and it does not raise).
    dead = {
        **environment,
        "PROJECTOR_OPENSEARCH_URL": f"http://127.0.0.1:{_free_port()}",
        "AWS_LAMBDA_FUNCTION_TIMEOUT": "8",
    }
    with _emulator(task_root, python, dead) as url:
        table.put_item(Item={**_orders(suffix)[0], "status": "SHIPPED", "version": 2})
        newer = capture_records(dynamodb, streams, source, after=records[-1]["dynamodb"]["SequenceNumber"])
        assert [r["eventName"] for r in newer] == ["MODIFY"]
        answer = requests.post(url, data=json.dumps({"Records": newer}), timeout=120)
        assert answer.status_code == 200, answer.text
        assert answer.json() == {
            "batchItemFailures": [{"itemIdentifier": newer[0]["dynamodb"]["SequenceNumber"]}]
        }
