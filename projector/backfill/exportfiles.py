"""Export data files as backfill pages: each file verified whole before any of its items is applied.

A data file is downloaded once into a spooled temporary file while its MD5 is computed, compared with
the manifest's ``md5Checksum``, then decompressed and parsed end to end (every line must be
``{"Item": {...}}`` in DynamoDB JSON, with the table's key attributes) and counted against the
manifest's ``itemCount``. Only then are its items handed out, in pages, from the line a checkpoint
names. So a bad checksum, a truncated gzip or a bad line stops that file before anything of it is
written, with an error naming the file (and the line), never the item's contents.

Pages have the same shape as a scan's (``projector.source.scanner.Page``): the "segment" is the
file's index in the export's sorted file list, the continuation key ``{"line": {"N": "<items done>"}}``
and the read time the export time, so ``PageApplier`` and the checkpoints work unchanged.
"""

from __future__ import annotations

import base64
import binascii
import gzip
import hashlib
import json
import logging
import tempfile
import threading
import zlib
from collections.abc import Iterator
from typing import IO, TYPE_CHECKING, Any

from projector.backfill.export import DataFile, Export, ExportError, _call
from projector.records import DecodeError, decode_image
from projector.source.scanner import Page

if TYPE_CHECKING:
    from projector.source.ratelimit import TokenBucket

logger = logging.getLogger(__name__)

SPOOL_BYTES = 64 * 1024 * 1024  # larger files go to a temporary file on disk (/tmp in Lambda)
CHUNK_BYTES = 1024 * 1024


def line_key(done: int) -> dict[str, Any]:
    """The continuation key after ``done`` items of a file (a checkpoint key like a scan's)."""
    return {"line": {"N": str(done)}}


def line_of(key: dict[str, Any] | None) -> int:
    return 0 if not key else int(key["line"]["N"])


def _md5_matches(expected: str, digest: bytes) -> bool:
    text = expected.strip()
    try:
        if len(text) == 32:
            return bytes.fromhex(text) == digest
        return base64.b64decode(text, validate=True) == digest
    except (ValueError, binascii.Error):
        return False


class VerifiedFile:
    """One data file, downloaded and checked; ``items(start)`` reads its items again from the spool."""

    def __init__(self, url: str, spool: IO[bytes], count: int) -> None:
        self.url = url
        self.count = count
        self._spool = spool

    def items(self, start: int = 0) -> Iterator[dict[str, Any]]:
        self._spool.seek(0)
        with gzip.GzipFile(fileobj=self._spool, mode="rb") as lines:
            index = 0
            for line in lines:
                if not line.strip():
                    continue
                if index >= start:
                    yield json.loads(line)["Item"]
                index += 1

    def close(self) -> None:
        self._spool.close()


def verify_file(s3: Any, bucket: str, entry: DataFile, key_attributes: tuple[str, ...]) -> VerifiedFile:
    """Download ``entry`` and check its checksum, gzip stream, every line and its item count."""
    url = f"s3://{bucket}/{entry.key}"
    spool: IO[bytes] = tempfile.SpooledTemporaryFile(max_size=SPOOL_BYTES)  # noqa: SIM115 - owned by the result
    try:
        response = _call(f"GetObject {url}", s3.get_object, Bucket=bucket, Key=entry.key)
        md5 = hashlib.md5(usedforsecurity=False)
        for chunk in response["Body"].iter_chunks(CHUNK_BYTES):
            md5.update(chunk)
            spool.write(chunk)
        if entry.md5Checksum is not None and not _md5_matches(entry.md5Checksum, md5.digest()):
            raise ExportError(
                f"{url}: MD5 {base64.b64encode(md5.digest()).decode()} does not match the manifest's "
                f"{entry.md5Checksum}; nothing of this file was applied"
            )
        count = _check_lines(url, spool, key_attributes)
        if entry.itemCount is not None and count != entry.itemCount:
            raise ExportError(
                f"{url}: {count} items, the manifest says {entry.itemCount}; nothing of this file was applied"
            )
    except BaseException:
        spool.close()
        raise
    return VerifiedFile(url, spool, count)


def _check_lines(url: str, spool: IO[bytes], key_attributes: tuple[str, ...]) -> int:
    spool.seek(0)
    count = 0
    number = 0
    try:
        with gzip.GzipFile(fileobj=spool, mode="rb") as lines:
            for number, line in enumerate(lines, start=1):
                if not line.strip():
                    continue
                _check_line(url, number, line, key_attributes)
                count += 1
    except (EOFError, OSError, zlib.error) as error:
        raise ExportError(
            f"{url}: not a complete gzip file after line {number} ({type(error).__name__}: {error}); "
            "nothing of this file was applied"
        ) from None
    return count


def _check_line(url: str, number: int, line: bytes, key_attributes: tuple[str, ...]) -> None:
    where = f"{url} line {number}"
    try:
        document = json.loads(line)
    except json.JSONDecodeError as error:
        raise ExportError(f"{where} is not JSON ({error.msg}); nothing of this file was applied") from None
    except UnicodeDecodeError as error:  # the other ValueError json.loads raises (on bytes)
        raise ExportError(
            f"{where} is not UTF-8 (byte {error.start}); nothing of this file was applied"
        ) from None
    if not isinstance(document, dict) or set(document) != {"Item"} or not isinstance(document["Item"], dict):
        shape = sorted(document) if isinstance(document, dict) else type(document).__name__
        raise ExportError(
            f'{where} is not {{"Item": {{...}}}} DynamoDB JSON (found {shape}); nothing of this file was applied'
        )
    try:
        item = decode_image(document["Item"])
    except DecodeError as error:  # its message may quote the value: only the field path is reported
        raise ExportError(
            f"{where} is not DynamoDB JSON (at {error.field or 'the item'}); nothing of this file was applied"
        ) from None
    missing = [name for name in key_attributes if name not in item]
    if missing:
        raise ExportError(
            f"{where} has no key attribute {missing}: is this an export of another table? "
            "nothing of this file was applied"
        )


class ExportReader:
    """Pages of any data file of one export, like ``SegmentScanner`` pages of a segment."""

    def __init__(
        self,
        s3: Any,
        export: Export,
        key_attributes: tuple[str, ...],
        page_size: int,
        stop: threading.Event,
        limiter: TokenBucket | None = None,
    ) -> None:
        self.s3 = s3
        self.export = export
        self.key_attributes = key_attributes
        self.page_size = page_size
        self.stop = stop
        self.limiter = limiter

    def pages(self, segment: int, start_key: dict[str, Any] | None = None) -> Iterator[Page]:
        """Pages of file ``segment`` after ``start_key``'s line, once the whole file has been verified."""
        entry = self.export.files[segment]
        verified = verify_file(self.s3, self.export.bucket, entry, self.key_attributes)
        try:
            done = line_of(start_key)
            if done > verified.count:
                raise ExportError(
                    f"{verified.url}: the checkpoint is at item {done} of {verified.count}: "
                    "not the file it was taken from"
                )
            items = verified.items(done)
            while not self.stop.is_set():
                if self.limiter is not None and not self.limiter.acquire(self.stop, self.page_size):
                    return
                page = [item for _, item in zip(range(self.page_size), items, strict=False)]
                if self.limiter is not None:
                    self.limiter.refund(self.page_size - len(page))
                done += len(page)
                last = done >= verified.count
                yield Page(segment, page, None if last else line_key(done), self.export.export_time)
                if last:
                    return
        finally:
            verified.close()
