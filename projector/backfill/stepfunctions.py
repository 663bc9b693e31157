"""``projector backfill --on-aws``: start the deployed backfill state machine and follow it.

The execution input is the one documented in docs/export.md (and read by the ``begin`` step of
``projector.backfill_handler``). Progress comes from DescribeExecution and from the Distributed Map
run's item counts (ListMapRuns, DescribeMapRun); the run ends with the execution's status and output.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from projector.exceptions import ProjectorError

logger = logging.getLogger(__name__)

RUNNING = "RUNNING"
POLL_S = 5.0


class OnAwsError(ProjectorError):
    """The state machine could not be started, or its execution did not succeed."""


@dataclass(slots=True)
class Progress:
    """One look at a running execution."""

    status: str
    items_total: int = 0
    items_succeeded: int = 0
    items_failed: int = 0
    items_running: int = 0
    output: Any = None
    error: str | None = None
    map_run_arn: str | None = None
    history: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "items": {
                "total": self.items_total,
                "succeeded": self.items_succeeded,
                "failed": self.items_failed,
                "running": self.items_running,
            },
            "map_run_arn": self.map_run_arn,
            "output": self.output,
            "error": self.error,
        }


def execution_input(
    *,
    total_segments: int | None = None,
    export_url: str | None = None,
    export_arn: str | None = None,
    export_time: float | None = None,
    rebuild: bool = False,
    projections: tuple[str, ...] | list[str] = (),
    rate: float | None = None,
    concurrency: int | None = None,
    page_size: int | None = None,
    verify: bool = False,
) -> dict[str, Any]:
    """The state machine's execution input (only what was asked for; the rest takes the defaults)."""
    document: dict[str, Any] = {"rebuild": rebuild, "verify": verify}
    if export_url or export_arn:
        document.update({k: v for k, v in (("export_url", export_url), ("export_arn", export_arn)) if v})
        if export_time is not None:
            document["export_time"] = export_time
    else:
        document["total_segments"] = total_segments or 1
    for key, value in (
        ("projections", list(projections)),
        ("rate", rate),
        ("concurrency", concurrency),
        ("page_size", page_size),
    ):
        if value:
            document[key] = value
    return document


def start(client: Any, state_machine_arn: str, document: dict[str, Any]) -> str:
    name = f"backfill-{time.strftime('%Y%m%dT%H%M%S')}-{uuid.uuid4().hex[:6]}"
    try:
        answer = client.start_execution(
            stateMachineArn=state_machine_arn, name=name, input=json.dumps(document)
        )
    except Exception as error:
        raise OnAwsError(f"cannot start {state_machine_arn}: {error}") from None
    return str(answer["executionArn"])


def look(client: Any, execution_arn: str) -> Progress:
    """DescribeExecution, and the item counts of its Distributed Map run once there is one."""
    execution = client.describe_execution(executionArn=execution_arn)
    progress = Progress(status=execution["status"])
    if execution.get("output"):
        progress.output = json.loads(execution["output"])
    if execution["status"] not in (RUNNING, "SUCCEEDED"):
        progress.error = (
            f"{execution.get('error', execution['status'])}: {execution.get('cause', '')}".strip()
        )
    try:
        runs = client.list_map_runs(executionArn=execution_arn).get("mapRuns", [])
    except Exception as error:  # an older API or a local stand-in: the status alone still tells the end
        logger.debug("no map runs: %s", error)
        runs = []
    if runs:
        progress.map_run_arn = runs[0]["mapRunArn"]
        counts = client.describe_map_run(mapRunArn=progress.map_run_arn).get("itemCounts", {})
        progress.items_total = int(counts.get("total", 0))
        progress.items_succeeded = int(counts.get("succeeded", 0))
        progress.items_failed = (
            int(counts.get("failed", 0)) + int(counts.get("timedOut", 0)) + int(counts.get("aborted", 0))
        )
        progress.items_running = int(counts.get("running", 0))
    return progress


def follow(
    client: Any,
    execution_arn: str,
    on_progress: Callable[[Progress], None] | None = None,
    poll_s: float = POLL_S,
    sleep: Callable[[float], None] = time.sleep,
) -> Progress:
    """Poll until the execution ends; its last Progress (an OnAwsError unless it SUCCEEDED)."""
    while True:
        progress = look(client, execution_arn)
        if on_progress is not None:
            on_progress(progress)
        if progress.status != RUNNING:
            break
        sleep(poll_s)
    if progress.status != "SUCCEEDED":
        raise OnAwsError(
            f"execution {execution_arn} {progress.status}: {progress.error} "
            f"({progress.items_succeeded}/{progress.items_total} items succeeded, "
            f"{progress.items_failed} failed)"
        )
    return progress
