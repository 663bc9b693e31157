"""`projector export start|status`: a point-in-time export of the source table to S3, for `backfill`."""

from __future__ import annotations

import logging
from typing import Any

import click

from projector.cli.output import CommandError, emit, json_option

logger = logging.getLogger(__name__)


@click.group("export")
def command() -> None:
    """Export the source table to S3 (point-in-time recovery must be on), for `backfill --export-arn`."""


def _json(description: dict[str, Any]) -> dict[str, Any]:
    return {
        "export_arn": description.get("ExportArn"),
        "status": description.get("ExportStatus"),
        "table_arn": description.get("TableArn"),
        "bucket": description.get("S3Bucket"),
        "prefix": description.get("S3Prefix"),
        "export_time": _seconds(description.get("ExportTime") or description.get("RequestedAt")),
        "export_time_source": "ExportTime" if description.get("ExportTime") else "the request's moment",
        "item_count": description.get("ItemCount"),
        "failure": description.get("FailureMessage"),
    }


def _seconds(value: Any) -> float | None:
    return (
        None if value is None else float(value.timestamp()) if hasattr(value, "timestamp") else float(value)
    )


def _print(data: dict[str, Any]) -> None:
    for name, value in data.items():
        if value is not None:
            click.echo(f"{name:12} {value}")


@command.command("start")
@click.option("--bucket", required=True, help="S3 bucket in the table's region (created beforehand).")
@click.option("--prefix", default="projector-exports", show_default=True, help="Key prefix in the bucket.")
@click.option(
    "--wait",
    "wait_s",
    type=click.FloatRange(min=0),
    default=0.0,
    metavar="SECONDS",
    help="Wait up to this long for the export to complete.",
)
@json_option
def start(bucket: str, prefix: str, wait_s: float, as_json: bool) -> None:
    """Start ExportTableToPointInTime of PROJECTOR_SOURCE_TABLE as of now (FULL_EXPORT, DYNAMODB_JSON)."""
    from projector.backfill.export import ExportError
    from projector.backfill.exportjobs import remember, start_export, wait
    from projector.runtime import Runtime

    runtime = Runtime()
    settings = runtime.settings
    try:
        description = start_export(runtime.dynamodb, settings.source_table, bucket, prefix)
        kept = remember(settings.state_dir, description)
        if wait_s > 0:
            requested = description
            description = {**requested, **wait(runtime.dynamodb, description["ExportArn"], wait_s)}
    except ExportError as error:
        raise CommandError(str(error)) from None
    logger.info("export request time kept in %s", kept)
    data = _json(description)
    emit(data, as_json, _print)
    if not as_json:
        click.echo(f"next: projector backfill --export-arn {data['export_arn']}", err=True)


@command.command("status")
@click.argument("export_arn")
@json_option
def status(export_arn: str, as_json: bool) -> None:
    """DescribeExport: its status, time, item count (the ARN is used as given)."""
    from projector.backfill.export import ExportError
    from projector.backfill.exportjobs import describe
    from projector.runtime import Runtime

    try:
        description = describe(Runtime().dynamodb, export_arn)
    except ExportError as error:
        raise CommandError(str(error)) from None
    emit(_json(description), as_json, _print)
