"""Where dead letters live: a folder locally (file://), a bucket prefix in AWS (s3://)."""

from __future__ import annotations

import json
import logging
import os
from abc import ABC, abstractmethod
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

from projector.deadletters.types import DeadLetter

if TYPE_CHECKING:
    from projector.config.settings import Settings

logger = logging.getLogger(__name__)

PENDING = "pending"
REDRIVEN = "redriven"


class DeadLetterStore(ABC):
    """Write-once storage of dead letters; ``redriven`` moves an entry aside once it has been replayed."""

    @abstractmethod
    def put(self, letter: DeadLetter) -> str:
        """Store ``letter`` under a new name and answer where it went."""

    @abstractmethod
    def list(self, include_redriven: bool = False) -> Iterator[DeadLetter]: ...

    @abstractmethod
    def mark_redriven(self, letter: DeadLetter) -> None: ...


class FileDeadLetterStore(DeadLetterStore):
    def __init__(self, root: Path) -> None:
        self.root = root

    def put(self, letter: DeadLetter) -> str:
        folder = self.root / PENDING
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{letter.id}.json"
        with open(path, "x", encoding="utf-8") as handle:  # "x": never overwrite an entry
            handle.write(letter.model_dump_json())
            handle.flush()
            os.fsync(handle.fileno())
        return str(path)

    def list(self, include_redriven: bool = False) -> Iterator[DeadLetter]:
        folders = [PENDING, REDRIVEN] if include_redriven else [PENDING]
        for name in folders:
            for path in sorted((self.root / name).glob("*.json")):
                yield DeadLetter.model_validate_json(path.read_text(encoding="utf-8"))

    def mark_redriven(self, letter: DeadLetter) -> None:
        target = self.root / REDRIVEN
        target.mkdir(parents=True, exist_ok=True)
        os.replace(self.root / PENDING / f"{letter.id}.json", target / f"{letter.id}.json")


class S3DeadLetterStore(DeadLetterStore):
    def __init__(self, bucket: str, prefix: str, client: Any) -> None:
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self.client = client

    def _key(self, folder: str, letter_id: str) -> str:
        return "/".join(part for part in (self.prefix, folder, f"{letter_id}.json") if part)

    def put(self, letter: DeadLetter) -> str:
        key = self._key(PENDING, letter.id)
        self.client.put_object(
            Bucket=self.bucket,
            Key=key,
            Body=letter.model_dump_json().encode(),
            ContentType="application/json",
            IfNoneMatch="*",
        )
        return f"s3://{self.bucket}/{key}"

    def list(self, include_redriven: bool = False) -> Iterator[DeadLetter]:
        folders = [PENDING, REDRIVEN] if include_redriven else [PENDING]
        paginator = self.client.get_paginator("list_objects_v2")
        for folder in folders:
            prefix = "/".join(part for part in (self.prefix, folder) if part) + "/"
            for page in paginator.paginate(Bucket=self.bucket, Prefix=prefix):
                for entry in page.get("Contents", []):
                    body = self.client.get_object(Bucket=self.bucket, Key=entry["Key"])["Body"].read()
                    yield DeadLetter.model_validate(json.loads(body))

    def mark_redriven(self, letter: DeadLetter) -> None:
        source = self._key(PENDING, letter.id)
        self.client.copy_object(
            Bucket=self.bucket,
            Key=self._key(REDRIVEN, letter.id),
            CopySource={"Bucket": self.bucket, "Key": source},
        )
        self.client.delete_object(Bucket=self.bucket, Key=source)


def open_store(settings: Settings, s3_client: Any | None = None) -> DeadLetterStore:
    """The store named by PROJECTOR_DEAD_LETTERS."""
    parsed = urlparse(settings.dead_letters)
    if parsed.scheme == "file":
        path = (parsed.netloc + parsed.path) if parsed.netloc else parsed.path
        return FileDeadLetterStore(Path(path))
    if s3_client is None:
        from projector.clients import s3_client as make_client

        s3_client = make_client(settings)
    return S3DeadLetterStore(parsed.netloc, parsed.path, s3_client)
