"""Where dead letters live: a folder locally (file://), a bucket prefix in AWS (s3://)."""

from __future__ import annotations

import functools
import json
import logging
import os
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

from projector.deadletters.types import LETTER_ID, BadLetter, DeadLetter, check_letter_id

if TYPE_CHECKING:
    from projector.config.settings import Settings

logger = logging.getLogger(__name__)

PENDING = "pending"
REDRIVEN = "redriven"
SUFFIX = ".json"
FILE_MODE = 0o600  # letters hold whole item images: readable by the owner only
FOLDER_MODE = 0o700


class DeadLetterStore(ABC):
    """Write-once storage of dead letters; ``redriven`` moves an entry aside once it has been replayed.

    A letter's id is its file (object) name, checked against one pattern. An entry that cannot be read
    (a bad name, bad JSON) is logged, kept in ``skipped`` and passed over: one bad letter never stops a
    listing or a redrive.
    """

    def __init__(self) -> None:
        self.skipped: list[BadLetter] = []

    @abstractmethod
    def put(self, letter: DeadLetter) -> str:
        """Store ``letter`` under a new name and answer where it went."""

    @abstractmethod
    def list(self, include_redriven: bool = False) -> Iterator[DeadLetter]: ...

    @abstractmethod
    def mark_redriven(self, letter: DeadLetter) -> None: ...

    def _read(self, name: str, location: str, body: Callable[[], bytes | str]) -> DeadLetter | None:
        """The letter stored as ``name`` (its id is the name), or None after reporting why not."""
        letter_id = name.removesuffix(SUFFIX)
        try:
            if not name.endswith(SUFFIX) or not LETTER_ID.match(letter_id):
                raise ValueError("the name is not <letter id>.json")
            data = json.loads(body())
            if not isinstance(data, dict):
                raise ValueError("the entry is not a JSON object")
            # The name is the id: whatever the contents claim is replaced before validation.
            letter = DeadLetter.model_validate({**data, "id": letter_id})
        except (ValueError, OSError) as error:
            reason = f"{type(error).__name__}: {str(error).splitlines()[0][:200]}"
            self.skipped.append(BadLetter(name=name, location=location, error=reason))
            logger.warning("dead letter %s skipped: %s", location, type(error).__name__)
            return None
        return letter


def _private_folder(path: Path) -> None:
    path.mkdir(mode=FOLDER_MODE, parents=True, exist_ok=True)
    os.chmod(path, FOLDER_MODE)  # mkdir's mode is cut by the umask, and an existing folder keeps its own


class FileDeadLetterStore(DeadLetterStore):
    def __init__(self, root: Path) -> None:
        super().__init__()
        self.root = root

    def _path(self, folder: str, letter_id: str) -> Path:
        return self.root / folder / f"{check_letter_id(letter_id)}{SUFFIX}"

    def put(self, letter: DeadLetter) -> str:
        _private_folder(self.root)
        _private_folder(self.root / PENDING)
        path = self._path(PENDING, letter.id)
        # O_EXCL: never overwrite an entry; 0600 from the first byte, whatever the umask.
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            os.fchmod(handle.fileno(), FILE_MODE)
            handle.write(letter.model_dump_json())
            handle.flush()
            os.fsync(handle.fileno())
        return str(path)

    def list(self, include_redriven: bool = False) -> Iterator[DeadLetter]:
        self.skipped = []
        folders = [PENDING, REDRIVEN] if include_redriven else [PENDING]
        for name in folders:
            for path in sorted((self.root / name).glob(f"*{SUFFIX}")):
                letter = self._read(path.name, str(path), path.read_bytes)
                if letter is not None:
                    yield letter

    def mark_redriven(self, letter: DeadLetter) -> None:
        _private_folder(self.root / REDRIVEN)
        os.replace(self._path(PENDING, letter.id), self._path(REDRIVEN, letter.id))


class S3DeadLetterStore(DeadLetterStore):
    def __init__(self, bucket: str, prefix: str, client: Any) -> None:
        super().__init__()
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self.client = client

    def _key(self, folder: str, letter_id: str) -> str:
        return "/".join(
            part for part in (self.prefix, folder, f"{check_letter_id(letter_id)}{SUFFIX}") if part
        )

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
        self.skipped = []
        folders = [PENDING, REDRIVEN] if include_redriven else [PENDING]
        paginator = self.client.get_paginator("list_objects_v2")
        for folder in folders:
            prefix = "/".join(part for part in (self.prefix, folder) if part) + "/"
            for page in paginator.paginate(Bucket=self.bucket, Prefix=prefix):
                for entry in page.get("Contents", []):
                    key = entry["Key"]
                    letter = self._read(
                        key.removeprefix(prefix),
                        f"s3://{self.bucket}/{key}",
                        functools.partial(self._body, key),
                    )
                    if letter is not None:
                        yield letter

    def _body(self, key: str) -> bytes:
        body: bytes = self.client.get_object(Bucket=self.bucket, Key=key)["Body"].read()
        return body

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
