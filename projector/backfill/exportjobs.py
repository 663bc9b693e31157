"""Exports as DynamoDB jobs: start one, wait for one, and resolve what ``backfill`` was given into an Export.

The export ARN is treated as an opaque string (never parsed: local servers return malformed ones);
the table and the folder come from DescribeExport and the manifests. An export of another table, one
still running or failed, or one in a bucket of another region is refused with the export named.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from projector.backfill.export import Export, ExportError, find_folder, locate
from projector.retry import Deadline, retrying
from projector.retry.transient import error_code, is_transient
from projector.statefiles import write_atomically

logger = logging.getLogger(__name__)

POLL_S = 5.0


def table_arn(dynamodb: Any, table: str) -> str:
    what = f"DescribeTable {table}"
    found = retrying(Deadline.after(60), is_transient, what=what)(
        lambda: dynamodb.describe_table(TableName=table)
    )
    return str(found["Table"]["TableArn"])


def start_export(dynamodb: Any, table: str, bucket: str, prefix: str | None) -> dict[str, Any]:
    """ExportTableToPointInTime of ``table`` as of now (FULL_EXPORT, DYNAMODB_JSON); its description.

    DynamoDB picks the export time (the request's moment) and reports it in DescribeExport; no
    ExportTime is sent, so a local clock ahead of AWS's can never ask for one "in the future". The
    moment just before the request is kept as ``RequestedAt``: no later than the export's own time,
    it stands in for servers that report none.
    """
    arn = table_arn(dynamodb, table)
    requested_at = time.time()
    request: dict[str, Any] = {
        "TableArn": arn,
        "S3Bucket": bucket,
        "ExportFormat": "DYNAMODB_JSON",
        "ExportType": "FULL_EXPORT",
    }
    if prefix:
        request["S3Prefix"] = prefix.strip("/")
    try:
        answer: dict[str, Any] = dynamodb.export_table_to_point_in_time(**request)["ExportDescription"]
    except Exception as error:
        code = error_code(error)
        if code == "PointInTimeRecoveryUnavailableException":
            raise ExportError(
                f"point-in-time recovery is off for table {table}: turn it on first "
                f"(aws dynamodb update-continuous-backups --table-name {table} "
                "--point-in-time-recovery-specification PointInTimeRecoveryEnabled=true)"
            ) from None
        if code in {"TableNotFoundException", "ResourceNotFoundException"}:
            raise ExportError(f"table {table} not found: {error}") from None
        raise
    answer["RequestedAt"] = requested_at
    return answer


def describe(dynamodb: Any, export_arn: str) -> dict[str, Any]:
    try:
        description: dict[str, Any] = dynamodb.describe_export(ExportArn=export_arn)["ExportDescription"]
        return dict(description)
    except Exception as error:
        if error_code(error) in {"ExportNotFoundException", "ResourceNotFoundException"}:
            raise ExportError(f"export {export_arn} not found") from None
        raise


def wait(
    dynamodb: Any, export_arn: str, timeout_s: float, poll_s: float = POLL_S, on_poll: Any = None
) -> dict[str, Any]:
    """DescribeExport until COMPLETED; FAILED (or the timeout) is an error naming the export."""
    deadline = time.monotonic() + timeout_s
    pause = min(0.5, poll_s)
    while True:
        found = describe(dynamodb, export_arn)
        status = found.get("ExportStatus")
        if on_poll is not None:
            on_poll(found)
        if status == "COMPLETED":
            return found
        if status == "FAILED":
            raise ExportError(
                f"export {export_arn} FAILED: {found.get('FailureCode')}: {found.get('FailureMessage')}"
            )
        if time.monotonic() + pause > deadline:
            raise ExportError(
                f"export {export_arn} is still {status} after {timeout_s:g} s: "
                "wait longer (--wait-timeout) or load it later with --export-arn"
            )
        time.sleep(pause)
        pause = min(pause * 2, poll_s)


def _record_path(state_dir: str | Path, export_arn: str) -> Path:
    name = hashlib.sha256(export_arn.encode()).hexdigest()[:16]
    return Path(state_dir) / "exports" / f"{name}.json"


def remember(state_dir: str | Path, description: dict[str, Any]) -> Path:
    """Keep the moment an export was requested, for servers whose DescribeExport has no ExportTime."""
    path = _record_path(state_dir, description["ExportArn"])
    record = {
        "export_arn": description["ExportArn"],
        "requested_at": description["RequestedAt"],
        "table_arn": description.get("TableArn"),
        "bucket": description.get("S3Bucket"),
        "prefix": description.get("S3Prefix"),
    }
    write_atomically(path, json.dumps(record, indent=1) + "\n")
    return path


def remembered_time(state_dir: str | Path, export_arn: str) -> float | None:
    """When ``projector export start`` on this machine requested ``export_arn`` (None: not known here)."""
    try:
        record = json.loads(_record_path(state_dir, export_arn).read_text(encoding="utf-8"))
    except (FileNotFoundError, ValueError):
        return None
    return float(record["requested_at"]) if record.get("export_arn") == export_arn else None


def resolve(
    dynamodb: Any,
    s3: Any,
    *,
    table: str,
    region: str,
    url: str | None = None,
    export_arn: str | None = None,
    export_time: float | None = None,
    wait_timeout_s: float = 0.0,
    poll_s: float = POLL_S,
    state_dir: str | Path | None = None,
) -> Export:
    """The Export to load, from its folder (``url``) or its ARN; checked to be an export of ``table``."""
    description: dict[str, Any] | None = None
    if export_arn:
        description = (
            wait(dynamodb, export_arn, wait_timeout_s, poll_s)
            if wait_timeout_s > 0
            else describe(dynamodb, export_arn)
        )
        status = description.get("ExportStatus")
        if status == "FAILED":
            raise ExportError(
                f"export {export_arn} FAILED: {description.get('FailureCode')}: "
                f"{description.get('FailureMessage')}"
            )
        if status != "COMPLETED":
            raise ExportError(f"export {export_arn} is {status}, not COMPLETED: wait for it (--wait-timeout)")
        if description.get("ExportType") not in (None, "FULL_EXPORT"):
            raise ExportError(
                f"export {export_arn} is an {description['ExportType']}: only a FULL_EXPORT loads"
            )
        if "ExportTime" not in description and state_dir is not None and export_time is None:
            requested = remembered_time(state_dir, export_arn)
            if requested is not None:
                description["ExportTime"] = datetime.fromtimestamp(requested)
                description["ExportTimeSource"] = "the request time kept by `projector export start`"
                logger.warning(
                    "DescribeExport of %s has no ExportTime: using the moment `projector export start` "
                    "requested it (%s), kept in %s",
                    export_arn,
                    description["ExportTime"].isoformat(),
                    _record_path(state_dir, export_arn),
                )
        if url is None:
            manifest = description.get("ExportManifest")
            url = find_folder(
                s3, description["S3Bucket"], description.get("S3Prefix") or "", export_arn, manifest
            )
    if url is None:
        raise ExportError("give --from-export s3://BUCKET/PREFIX/AWSDynamoDB/EXPORT_ID/ or --export-arn ARN")
    export = locate(s3, url, region=region, export_time=export_time, description=description)
    expected = table_arn(dynamodb, table)
    if export.table_arn is not None and export.table_arn != expected:
        raise ExportError(
            f"export {export.export_arn or export.url} is of {export.table_arn}, not of the source table "
            f"{expected} (PROJECTOR_SOURCE_TABLE)"
        )
    if export.table_arn is None:
        export.notes.append(
            "the export names no table (no manifest, no ARN): each item's key attributes are checked instead"
        )
    return export
