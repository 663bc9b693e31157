"""`projector.backfill_handler.lambda_handler` through the Lambda Runtime Interface Emulator (awslambdaric).

Each work item (a scan segment, an export data file) gets a deadline (the function timeout less the
event's margin_ms) small enough that the first invocation stops midway; the answers' items are sent
again until done. The projections then equal
the source, and the CLI's own backfill over the same input finds nothing left to write.
"""

from __future__ import annotations

import json
import socket
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from devservers.workload import seed_orders
from projector.backfill.export import DataFile
from projector.backfill.workitems import plan
from projector.runtime import Runtime
from tests.integration.test_backfill import assert_matches_truth, cli, ready_runtime, verify
from tests.integration.test_export_load import _fixture, bucket, s3  # noqa: F401 - fixtures

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
TIMEOUT_S = 30  # the function timeout; the event's margin leaves each invocation ~3 s of it
MARGIN_MS = 27_000


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def runtime(settings_env: Any, opensearch: Any, dynamodb: Any, monkeypatch: pytest.MonkeyPatch) -> Runtime:
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", "http://127.0.0.1:5000")
    return ready_runtime()


@pytest.fixture
def emulator(runtime: Runtime) -> Iterator[str]:
    """The RIE on free 127.0.0.1 ports running projector.backfill_handler with this test's settings."""
    from devservers.rie import INVOKE_PATH, running_rie

    with running_rie(
        handler="projector.backfill_handler.lambda_handler",
        env={"AWS_LAMBDA_FUNCTION_TIMEOUT": str(TIMEOUT_S)},
        port=_free_port(),
        runtime_api_port=_free_port(),
    ) as rie:
        url = rie.url + INVOKE_PATH
        _invoke(url, {"action": "verify"})  # cold start (imports, clients) outside the timed items
        yield url


def _invoke(url: str, event: dict[str, Any]) -> dict[str, Any]:
    request = urllib.request.Request(url, data=json.dumps(event).encode(), method="POST")
    with urllib.request.urlopen(request, timeout=60) as answer:
        return dict(json.loads(answer.read()))


def _run_items(url: str, items: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    """Every item to its end, one invocation after another; the answers per item."""
    answers: list[list[dict[str, Any]]] = []
    for item in items:
        mine: list[dict[str, Any]] = []
        current = item
        for _ in range(20):
            answer = _invoke(url, {"action": "apply", "item": current, "margin_ms": MARGIN_MS})
            assert "errorMessage" not in answer, answer
            mine.append(answer)
            if answer["done"]:
                break
            current = answer["item"]
        answers.append(mine)
    return answers


def _check_midway(answers: list[list[dict[str, Any]]], sizes: list[int]) -> None:
    for mine, size in zip(answers, sizes, strict=True):
        assert mine[-1]["done"] and mine[-1]["item"]["items_done"] == size
        assert len(mine) >= 2 and not mine[0]["done"] and 0 < mine[0]["items"] < size
        assert mine[0]["stopped_for_deadline"] and mine[0]["item"]["cursor"] is not None
        assert sum(answer["items"] for answer in mine) == size  # each item applied once, none skipped


def test_scan_segments_through_the_emulator_stop_midway_and_finish(
    runtime: Runtime, dynamodb: Any, opensearch: Any, emulator: str
) -> None:
    table = runtime.settings.source_table
    seed_orders(dynamodb, table, 24)
    items = [item.model_dump(mode="json") for item in plan(table, total_segments=1, page_size=2, rate=4)]
    answers = _run_items(emulator, items)
    _check_midway(answers, [a[-1]["item"]["items_done"] for a in answers])
    assert sum(a[-1]["item"]["items_done"] for a in answers) == 24
    assert verify(runtime).drift == 0
    assert_matches_truth(runtime, dynamodb, opensearch)
    again = cli("--segments", "1", "--json", "--no-progress")  # the CLI over the same table
    assert again.returncode == 0, again.stderr
    summary = json.loads(again.stdout)
    assert summary["items_scanned"] == 24 and summary["written"] == 0 and summary["stale"] > 0


def test_export_files_through_the_emulator_stop_midway_and_finish(
    runtime: Runtime,
    dynamodb: Any,
    opensearch: Any,
    emulator: str,
    s3: Any,  # noqa: F811 - the fixture imported above
    bucket: str,  # noqa: F811
) -> None:
    table = runtime.settings.source_table
    seed_orders(dynamodb, table, 24)
    built = _fixture(runtime, dynamodb, s3, bucket, files=1)
    items = [
        {
            "kind": "export",
            "table": table,
            "started_at": built.export_time,
            "segment": index,
            "total_segments": 1,
            "export_url": built.url,
            "file": DataFile.model_validate(entry).model_dump(mode="json"),
            "page_size": 2,
            "rate": 4,
        }
        for index, entry in enumerate(built.files)
    ]
    answers = _run_items(emulator, items)
    _check_midway(answers, [entry["itemCount"] for entry in built.files])
    assert verify(runtime).drift == 0
    assert_matches_truth(runtime, dynamodb, opensearch)
    again = cli("--from-export", built.url, "--json", "--no-progress")
    assert again.returncode == 0, again.stderr
    summary = json.loads(again.stdout)
    assert summary["items_scanned"] == 24 and summary["written"] == 0 and summary["stale"] > 0
