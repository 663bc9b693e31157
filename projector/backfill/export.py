"""A DynamoDB export to S3 (``DYNAMODB_JSON``): where it is, its manifests, and its data files.

DynamoDB writes ``<prefix>/AWSDynamoDB/<export id>/manifest-summary.json`` (export time, table, item
count), ``manifest-files.json`` (one line per data file: ``itemCount``, ``md5Checksum`` (base64 of the
gzipped file's MD5) and ``dataFileS3Key``) and the gzipped ``data/*.json.gz`` files of one
``{"Item": {...}}`` line per item. Without the manifests (moto's exports have none) the data files are
listed instead and nothing can be checked against a count or a checksum: that is said, never hidden.
The export time decides how every loaded item ranks against the stream, so where it came from
(manifest, DescribeExport, or the operator's ``--export-time``) is part of the run's record.
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

from projector.exceptions import ProjectorError
from projector.retry import Deadline, retrying
from projector.retry.transient import error_code, is_transient

logger = logging.getLogger(__name__)

SUMMARY, FILES = "manifest-summary.json", "manifest-files.json"
_URL = re.compile(r"^s3://(?P<bucket>[^/]+)/(?P<folder>.*AWSDynamoDB/[^/]+)/?$")


class ExportError(ProjectorError):
    """The export cannot be loaded as asked; the message names the export or the file."""


class ManifestSummary(BaseModel):
    """``manifest-summary.json``: the fields projector checks (the rest is ignored)."""

    model_config = ConfigDict(extra="ignore")

    exportArn: str | None = None  # DynamoDB's own field names
    tableArn: str | None = None
    exportTime: datetime | None = None
    itemCount: int | None = None
    outputFormat: str | None = None
    exportType: str | None = None
    manifestFilesS3Key: str | None = None


class DataFile(BaseModel):
    """One line of ``manifest-files.json`` (or a listed file: no count, no checksum)."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    dataFileS3Key: str
    itemCount: int | None = None
    md5Checksum: str | None = None

    @property
    def key(self) -> str:
        return self.dataFileS3Key


@dataclass(slots=True)
class Export:
    """One export, located and described: its files in a fixed order, its time and where that came from."""

    bucket: str
    folder: str  # <prefix>/AWSDynamoDB/<export id>, no trailing slash
    files: list[DataFile]
    export_time: float
    time_source: str
    manifest: bool
    table_arn: str | None = None
    export_arn: str | None = None
    item_count: int | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"s3://{self.bucket}/{self.folder}/"

    def to_json(self) -> dict[str, Any]:
        return {
            "url": self.url,
            "export_arn": self.export_arn,
            "table_arn": self.table_arn,
            "export_time": self.export_time,
            "export_time_source": self.time_source,
            "manifest": self.manifest,
            "files": len(self.files),
            "item_count": self.item_count,
            "notes": list(self.notes),
        }


def parse_url(url: str) -> tuple[str, str]:
    """``s3://BUCKET/PREFIX/AWSDynamoDB/EXPORT_ID/`` -> (bucket, folder without the trailing slash)."""
    match = _URL.match(url.strip())
    if match is None:
        raise ExportError(
            f"--from-export must look like s3://BUCKET/PREFIX/AWSDynamoDB/EXPORT_ID/, got {url!r}"
        )
    return match["bucket"], match["folder"]


def _call(what: str, function: Any, **request: Any) -> Any:
    """One S3 call with transient errors retried (a minute at most)."""
    return retrying(Deadline.after(60), is_transient, what=what)(lambda: function(**request))


def _missing(error: Exception) -> bool:
    return error_code(error) in {"NoSuchKey", "404", "NotFound"}


def read_object(s3: Any, bucket: str, key: str) -> bytes | None:
    """The whole object, or None when there is none."""
    try:
        response = _call(f"GetObject s3://{bucket}/{key}", s3.get_object, Bucket=bucket, Key=key)
    except Exception as error:
        if _missing(error):
            return None
        raise
    body: bytes = response["Body"].read()  # GetObject's Body is a StreamingBody
    return body


def check_region(s3: Any, bucket: str, region: str) -> None:
    """An export in a bucket of another region is refused (cross-region reads cost transfer and fail IAM)."""
    try:
        found = _call(f"GetBucketLocation {bucket}", s3.get_bucket_location, Bucket=bucket)
    except Exception as error:
        code = getattr(error, "response", {}).get("Error", {}).get("Code")
        if code == "NoSuchBucket":
            raise ExportError(f"export bucket {bucket!r} does not exist") from None
        raise
    location = found.get("LocationConstraint") or "us-east-1"
    location = "eu-west-1" if location == "EU" else location
    if location != region:
        raise ExportError(
            f"export bucket {bucket!r} is in {location}, not in {region} (AWS_REGION): "
            "export to a bucket in the table's region"
        )


def _time(value: datetime | None) -> float | None:
    return None if value is None else value.timestamp()


def locate(
    s3: Any,
    url: str,
    *,
    region: str,
    export_time: float | None = None,
    description: dict[str, Any] | None = None,
) -> Export:
    """Read the export's manifests (or list its data files), and settle its export time.

    ``export_time`` is the operator's ``--export-time``; ``description`` a DescribeExport answer.
    """
    bucket, folder = parse_url(url)
    check_region(s3, bucket, region)
    notes: list[str] = []
    summary_raw = read_object(s3, bucket, f"{folder}/{SUMMARY}")
    summary: ManifestSummary | None = None
    if summary_raw is not None:
        try:
            summary = ManifestSummary.model_validate_json(summary_raw)
        except ValidationError as error:
            raise ExportError(
                f"s3://{bucket}/{folder}/{SUMMARY} is not a manifest summary: {error}"
            ) from None
        if summary.outputFormat not in (None, "DYNAMODB_JSON"):
            raise ExportError(
                f"export {url} is in {summary.outputFormat}; only DYNAMODB_JSON exports can be loaded"
            )
        if summary.exportType not in (None, "FULL_EXPORT"):
            raise ExportError(f"export {url} is an {summary.exportType}; only a FULL_EXPORT can be loaded")
        files = _manifest_files(s3, bucket, folder, summary)
    else:
        files = _listed_files(s3, bucket, folder)
        notes.append(
            f"no {SUMMARY} in {url}: its data/ files were listed ({len(files)}); item counts and "
            "checksums cannot be checked"
        )
        logger.warning("%s", notes[-1])
    described = description or {}
    sources = [
        ("--export-time", export_time),
        (SUMMARY, _time(summary.exportTime) if summary else None),
        (described.get("ExportTimeSource", "DescribeExport ExportTime"), _time(described.get("ExportTime"))),
    ]
    known = [(name, value) for name, value in sources[1:] if value is not None]
    if export_time is not None:
        if known and export_time > min(value for _, value in known):
            raise ExportError(
                f"--export-time {export_time:.3f} is after the export's own time "
                f"{min(v for _, v in known):.3f} ({known[0][0]}): it may only be earlier"
            )
        time_source, chosen = sources[0]
    elif known:
        time_source, chosen = known[0]
    else:
        raise ExportError(
            f"the time of export {url} is unknown (no {SUMMARY}, no ExportTime from DescribeExport): "
            "pass --export-time with the moment the export was requested (or any earlier one)"
        )
    assert chosen is not None
    notes.append(f"export time {datetime.fromtimestamp(chosen).isoformat()} from {time_source}")
    return Export(
        bucket=bucket,
        folder=folder,
        files=files,
        export_time=chosen,
        time_source=time_source,
        manifest=summary is not None,
        table_arn=(summary.tableArn if summary else None) or described.get("TableArn"),
        export_arn=(summary.exportArn if summary else None) or described.get("ExportArn"),
        item_count=summary.itemCount if summary else described.get("ItemCount"),
        notes=notes,
    )


def _manifest_files(s3: Any, bucket: str, folder: str, summary: ManifestSummary) -> list[DataFile]:
    key = summary.manifestFilesS3Key or f"{folder}/{FILES}"
    raw = read_object(s3, bucket, key)
    if raw is None:
        raise ExportError(f"s3://{bucket}/{key} is missing: the export is incomplete")
    files: list[DataFile] = []
    for number, line in enumerate(raw.decode("utf-8", errors="replace").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            files.append(DataFile.model_validate_json(line))
        except ValidationError as error:
            raise ExportError(
                f"s3://{bucket}/{key} line {number} is not a data file entry: {error}"
            ) from None
    total = sum(f.itemCount or 0 for f in files)
    if summary.itemCount is not None and total != summary.itemCount:
        raise ExportError(f"s3://{bucket}/{key} lists {total} items but {SUMMARY} says {summary.itemCount}")
    return sorted(files, key=lambda f: f.key)


def _listed_files(s3: Any, bucket: str, folder: str) -> list[DataFile]:
    files: list[DataFile] = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=f"{folder}/data/"):
        files.extend(DataFile(dataFileS3Key=entry["Key"]) for entry in page.get("Contents", []))
    if not files:
        raise ExportError(f"s3://{bucket}/{folder}/ has neither {SUMMARY} nor data files: not an export")
    return sorted(files, key=lambda f: f.key)


def find_folder(s3: Any, bucket: str, prefix: str, export_arn: str, manifest_key: str | None) -> str:
    """The export's folder: from DescribeExport's ExportManifest, else the one export under the prefix."""
    if manifest_key:
        return f"s3://{bucket}/{manifest_key.rsplit('/', 1)[0]}/"
    base = f"{prefix.rstrip('/')}/AWSDynamoDB/" if prefix else "AWSDynamoDB/"
    found = _call(
        f"ListObjectsV2 s3://{bucket}/{base}",
        s3.list_objects_v2,
        Bucket=bucket,
        Prefix=base,
        Delimiter="/",
    )
    folders = [entry["Prefix"] for entry in found.get("CommonPrefixes", [])]
    if len(folders) != 1:
        raise ExportError(
            f"DescribeExport of {export_arn} names no manifest, and s3://{bucket}/{base} holds "
            f"{len(folders)} export folders: pass --from-export with the export's folder"
        )
    logger.warning(
        "DescribeExport of %s names no manifest: using the only export folder s3://%s/%s",
        export_arn,
        bucket,
        folders[0],
    )
    return f"s3://{bucket}/{folders[0]}"


def to_json_text(value: Any) -> str:
    return json.dumps(value, sort_keys=True)
