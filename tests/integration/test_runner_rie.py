"""`projector run --invoke-url` through the Lambda Runtime Interface Emulator running awslambdaric:
batches go over HTTP to a real Lambda runtime, its answers (and its errors) come back."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from projector.config import Settings
from projector.runner import Runner, RunnerOptions
from tests.support.polling import wait_until

try:  # the fixtures and helpers of test_runner (a package or a rootdir module, whichever pytest made it)
    from .test_runner import (
        ENDPOINT,
        FAST,
        checkpoint_of,
        moto_settings,
        put_orders,
        settings,
        stream_numbers,
        table,
    )
except ImportError:
    from test_runner import (
        ENDPOINT,
        FAST,
        checkpoint_of,
        moto_settings,
        put_orders,
        settings,
        stream_numbers,
        table,
    )

pytestmark = pytest.mark.integration

__all__ = ["moto_settings", "settings", "table"]  # fixtures shared with test_runner

REPO = Path(__file__).resolve().parents[2]
RIE_LIFETIME_S = 600  # the emulator is killed at teardown; this bounds it should the test run die first

#: Runs inside the emulator. What it does is read per invocation from plan.json beside it:
#: {"raise_first": bool, "fail_once_at": index or null}; every call is logged to calls.jsonl.
RIE_HANDLER = textwrap.dedent("""
    import json, os
    HERE = os.path.dirname(os.path.abspath(__file__))

    def handler(event, context):
        plan = json.load(open(os.path.join(HERE, "plan.json")))
        calls_path = os.path.join(HERE, "calls.jsonl")
        calls = sum(1 for _ in open(calls_path)) if os.path.exists(calls_path) else 0
        records = event["Records"]
        numbers = [record["dynamodb"]["SequenceNumber"] for record in records]
        call = {
            "numbers": numbers,
            "remaining_ms": context.get_remaining_time_in_millis(),
            "region": records[0]["awsRegion"] if records else None,
            "arn": records[0]["eventSourceARN"] if records else None,
            "created": [record["dynamodb"]["ApproximateCreationDateTime"] for record in records],
        }
        with open(calls_path, "a") as log:
            log.write(json.dumps(call) + "\\n")
        if plan.get("raise_first") and calls == 0:
            raise RuntimeError("first call fails")
        index = plan.get("fail_once_at")
        if index is not None and calls == 1 and len(numbers) > index:
            return {"batchItemFailures": [{"itemIdentifier": numbers[index]}]}
        return {"batchItemFailures": []}
""")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _wait_for_port(port: int, process: subprocess.Popen[bytes], seconds: float = 20.0) -> None:
    def listening() -> bool:
        if process.poll() is not None:
            raise RuntimeError(f"the emulator exited with {process.returncode}")
        with socket.socket() as probe:
            return probe.connect_ex(("127.0.0.1", port)) == 0

    wait_until(listening, seconds, what=f"the emulator to listen on {port}")


@pytest.fixture(scope="module")
def rie_binary() -> Path:
    try:
        from devservers.gotools import ensure_rie
    except ImportError:  # pragma: no cover - the services tooling is not there yet
        pytest.skip("devservers.gotools.ensure_rie is not available")
    try:
        return ensure_rie()
    except Exception as error:  # pragma: no cover - no Go toolchain or network
        pytest.skip(f"the Lambda Runtime Interface Emulator could not be installed: {error}")


@pytest.fixture
def emulator(rie_binary: Path, tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """The RIE on free 127.0.0.1 ports, running our handler with awslambdaric; killed at teardown."""
    task = tmp_path / "task"
    task.mkdir()
    (task / "rie_handler.py").write_text(RIE_HANDLER)
    (task / "plan.json").write_text("{}")
    invoke_port, runtime_port = _free_port(), _free_port()
    command = [
        str(rie_binary),
        "--log-level",
        "error",
        "--runtime-api-address",
        f"127.0.0.1:{runtime_port}",
        "--runtime-interface-emulator-address",
        f"127.0.0.1:{invoke_port}",
        sys.executable,
        "-m",
        "awslambdaric",
        "rie_handler.handler",
    ]
    if shutil.which("timeout"):
        command = ["timeout", "--kill-after=5", str(RIE_LIFETIME_S), *command]
    env = {**os.environ, "PYTHONPATH": str(task), "AWS_LAMBDA_FUNCTION_TIMEOUT": "30"}
    log = (tmp_path / "rie.log").open("wb")
    process = subprocess.Popen(
        command, cwd=task, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )
    try:
        _wait_for_port(invoke_port, process)
        yield f"http://127.0.0.1:{invoke_port}/2015-03-31/functions/function/invocations", task
    finally:
        for sig in (signal.SIGTERM, signal.SIGKILL):
            try:
                os.killpg(process.pid, sig)
            except ProcessLookupError:
                break
            try:
                process.wait(timeout=5)
                break
            except subprocess.TimeoutExpired:
                continue
        log.close()


def _calls(task: Path) -> list[dict[str, Any]]:
    path = task / "calls.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def test_batches_go_through_the_emulator_and_its_answers_come_back(
    settings: Settings, emulator: tuple[str, Path]
) -> None:
    url, task = emulator
    (task / "plan.json").write_text(json.dumps({"raise_first": True, "fail_once_at": 2}))
    put_orders(settings, 6)
    options = RunnerOptions(**{**FAST, "until_idle_s": 1.5}, invoke_url=url, batch_size=4, timeout_s=30)

    summary = Runner(settings=settings, options=options).run()

    truth = stream_numbers(settings)
    calls = _calls(task)
    assert (
        [call["numbers"] for call in calls]
        == [
            truth[0:4],  # raised: the whole batch is retried
            truth[0:4],  # reported truth[2]: resent from exactly there
            truth[2:4],
            truth[4:6],
        ]
    )
    assert summary.batches == 4
    assert all(0 < call["remaining_ms"] <= 30_000 for call in calls)
    assert {call["arn"] for call in calls} == {summary.stream_arn}
    assert {call["region"] for call in calls} == {settings.region}
    assert all(isinstance(created, int | float) for call in calls for created in call["created"])
    assert checkpoint_of(settings) == truth[-1]


def test_the_cli_sends_batches_to_the_invoke_url(
    settings: Settings, emulator: tuple[str, Path], tmp_path: Path
) -> None:
    url, task = emulator
    put_orders(settings, 5)
    env = {
        **os.environ,
        "PROJECTOR_SOURCE_TABLE": settings.source_table,
        "PROJECTOR_STATE_DIR": settings.state_dir,
        "PROJECTOR_DEAD_LETTERS": settings.dead_letters,
        "PROJECTOR_DYNAMODB_ENDPOINT": ENDPOINT,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
    }
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "projector.cli.main",
            "run",
            "--invoke-url",
            url,
            "--batch-size",
            "2",
            "--until-idle",
            "1.5",
            "--json",
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )

    assert result.returncode == 0, result.stderr
    reports = [json.loads(line) for line in result.stdout.splitlines()]
    assert [(r["outcome"], r["records"]) for r in reports] == [("ok", 2), ("ok", 2), ("ok", 1)]
    assert [number for call in _calls(task) for number in call["numbers"]] == stream_numbers(settings)
