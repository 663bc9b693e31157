"""Build a DynamoDB export in S3 the way DynamoDB writes one: manifests, checksums, several data files.

moto's exports have no manifests, so the documented format is covered by exports this module writes
itself: ``manifest-summary.json``, ``manifest-files.json`` (``itemCount``, base64 ``md5Checksum``,
``etag``, ``dataFileS3Key``) and gzipped ``data/<name>.json.gz`` files of ``{"Item": {...}}`` lines.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import json
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any


def dynamodb_json(item: dict[str, Any]) -> dict[str, Any]:
    """A low-level client item (bytes for B) as export DynamoDB JSON (base64 text for B)."""

    def value(entry: Any) -> Any:
        if isinstance(entry, bytes | bytearray):
            return base64.b64encode(bytes(entry)).decode()
        if isinstance(entry, dict):
            return {k: value(v) for k, v in entry.items()}
        if isinstance(entry, list):
            return [value(v) for v in entry]
        return entry

    return value(item)


def gz_lines(lines: list[str]) -> bytes:
    return gzip.compress("".join(line + "\n" for line in lines).encode(), mtime=0)


def md5_b64(data: bytes) -> str:
    return base64.b64encode(hashlib.md5(data, usedforsecurity=False).digest()).decode()


@dataclass
class BuiltExport:
    bucket: str
    folder: str
    export_time: float
    files: list[dict[str, Any]]  # manifest entries, in order
    items: list[list[dict[str, Any]]]  # per file, the items (export DynamoDB JSON)
    bodies: dict[str, bytes] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return f"s3://{self.bucket}/{self.folder}/"


def scan_all(dynamodb: Any, table: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    request: dict[str, Any] = {"TableName": table, "ConsistentRead": True}
    while True:
        page = dynamodb.scan(**request)
        items.extend(page["Items"])
        if "LastEvaluatedKey" not in page:
            return items
        request["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def build_export(
    s3: Any,
    bucket: str,
    items: list[dict[str, Any]],
    *,
    export_time: float,
    table_arn: str,
    files: int = 3,
    prefix: str = "exports",
) -> BuiltExport:
    """Write ``items`` (export DynamoDB JSON) as an export of ``files`` data files with manifests."""
    export_id = f"{int(export_time * 1000):014d}-{uuid.uuid4().hex[:8]}"
    folder = f"{prefix}/AWSDynamoDB/{export_id}"
    chunks = [items[index::files] for index in range(files)]
    built = BuiltExport(bucket, folder, export_time, [], chunks)
    for number, chunk in enumerate(chunks):
        key = f"{folder}/data/{number:04d}-{uuid.uuid4().hex[:12]}.json.gz"  # listed in this order
        body = gz_lines([json.dumps({"Item": item}) for item in chunk])
        s3.put_object(Bucket=bucket, Key=key, Body=body)
        built.bodies[key] = body
        built.files.append(
            {
                "itemCount": len(chunk),
                "md5Checksum": md5_b64(body),
                "etag": hashlib.md5(body, usedforsecurity=False).hexdigest(),
                "dataFileS3Key": key,
            }
        )
    write_manifests(s3, built, table_arn)
    return built


def write_manifests(s3: Any, built: BuiltExport, table_arn: str) -> None:
    files_key = f"{built.folder}/manifest-files.json"
    s3.put_object(
        Bucket=built.bucket,
        Key=files_key,
        Body="".join(json.dumps(entry) + "\n" for entry in built.files).encode(),
    )
    moment = datetime.fromtimestamp(built.export_time, UTC).isoformat().replace("+00:00", "Z")
    summary = {
        "version": "2020-06-30",
        "exportArn": f"{table_arn}/export/{built.folder.rsplit('/', 1)[-1]}",
        "startTime": moment,
        "endTime": datetime.fromtimestamp(time.time(), UTC).isoformat().replace("+00:00", "Z"),
        "tableArn": table_arn,
        "tableId": "00000000-0000-0000-0000-000000000000",
        "exportTime": moment,
        "s3Bucket": built.bucket,
        "s3Prefix": built.folder.split("/AWSDynamoDB/")[0],
        "s3SseAlgorithm": "AES256",
        "manifestFilesS3Key": files_key,
        "billedSizeBytes": sum(len(body) for body in built.bodies.values()),
        "itemCount": sum(entry["itemCount"] for entry in built.files),
        "outputFormat": "DYNAMODB_JSON",
        "exportType": "FULL_EXPORT",
    }
    s3.put_object(
        Bucket=built.bucket, Key=f"{built.folder}/manifest-summary.json", Body=json.dumps(summary).encode()
    )
