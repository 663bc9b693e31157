"""``projector backfill --on-aws``: the terminal side of the deployed backfill state machine."""

from __future__ import annotations

import logging
import os
from typing import Any

import click

from projector.cli.output import CommandError, emit

logger = logging.getLogger(__name__)

STATE_MACHINE_ENV = "PROJECTOR_BACKFILL_STATE_MACHINE"


def _client() -> Any:
    import boto3

    from projector.config.settings import load_settings

    return boto3.client("stepfunctions", region_name=load_settings().region)


def run_on_aws(
    *,
    state_machine: str | None,
    segments: int,
    rate: float | None,
    rebuild: bool,
    from_export: str | None,
    export_arn: str | None,
    export_time: float | None,
    projections: tuple[str, ...],
    progress: bool,
    as_json: bool,
    client: Any = None,
    poll_s: float = 5.0,
) -> None:
    """Start an execution with the documented input and follow it to its end."""
    from projector.backfill.stepfunctions import OnAwsError, execution_input, follow, start

    arn = state_machine or os.environ.get(STATE_MACHINE_ENV)
    if not arn:
        raise CommandError(
            f"--on-aws needs the state machine: --state-machine ARN or {STATE_MACHINE_ENV} "
            "(the stack output BackfillStateMachineArn; deploy with BackfillStateMachineEnabled=true)"
        )
    document = execution_input(
        total_segments=segments,
        export_url=from_export,
        export_arn=export_arn,
        export_time=export_time,
        rebuild=rebuild,
        projections=projections,
        rate=rate,
    )
    sfn = client or _client()
    try:
        execution = start(sfn, arn, document)
        click.echo(f"started {execution}", err=True)
        last: list[str] = []

        def show(look: Any) -> None:
            line = (
                f"{look.status}: {look.items_succeeded}/{look.items_total} items done, "
                f"{look.items_running} running, {look.items_failed} failed"
            )
            if progress or line not in last:
                click.echo(line, err=True)
            last[:] = [line]

        final = follow(sfn, execution, show, poll_s=poll_s)
    except OnAwsError as error:
        raise CommandError(str(error), exit_code=1) from None
    emit({"execution_arn": execution, "input": document, **final.to_json()}, as_json, _print)


def _print(data: dict[str, Any]) -> None:
    items = data["items"]
    click.echo(f"{data['status']}: {items['succeeded']}/{items['total']} items, {data['execution_arn']}")
    output = data.get("output") or {}
    for name, entry in ((output.get("verify") or {}).get("summary", {}).get("layout") or {}).items():
        click.echo(f"{name:24} reads {entry.get('read')}")
