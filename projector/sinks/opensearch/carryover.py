"""Carry tombstones (and kept TTL-expired documents) from the index serving reads into a rebuild's index.

A scan never sees a deleted item, so without this the new index would hold no tombstone for it and a
late change of the deleted item (a redrive, a resent batch) would bring it back after the swap. Neither
does a scan see a TTL-expired item that a ``keep_expired`` projection keeps. So a rebuild copies both
kinds from the read index into the new one, with their stored versions, when it begins and again just
before it swaps (catching tombstones written by a batch that started before the new index existed).

A copy only fills ids the new index has no document for, and it is written with the stored external
version, so whatever the stream or the scan wrote there meanwhile (folded against the same tombstone,
see the writer's seeds) is newer and wins. A kept document is one whose item is gone from the source.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from opensearchpy import helpers

from projector.exceptions import ProjectorError
from projector.projection.document_ids import item_id_of
from projector.retry import Deadline, retrying
from projector.sinks.opensearch.errors import is_retryable
from projector.sinks.opensearch.types import META_FIELD, VISIBLE_FIELD

if TYPE_CHECKING:
    from opensearchpy import OpenSearch

    from projector.projection.base import DocumentProjection

logger = logging.getLogger(__name__)

CHUNK = 500
_encode_json = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode
DELETED_FIELD = f"{META_FIELD}.deleted"

Gone = Callable[[list[str]], set[str]]
"""Given item ids, the ones no longer in the source table."""


class CarryOverError(ProjectorError, RuntimeError):
    """Documents could not be copied into the new index: the rebuild must not swap without them."""


@dataclass(slots=True)
class CarryOver:
    """What one pass copied: tombstones and kept documents written, and what the new index already had."""

    tombstones: int = 0
    kept: int = 0
    present: int = 0
    refused: int = 0

    def to_json(self) -> dict[str, int]:
        return {
            "tombstones": self.tombstones,
            "kept": self.kept,
            "present": self.present,
            "refused": self.refused,
        }


def carry_documents(
    client: OpenSearch,
    projection: DocumentProjection,
    source: str,
    target: str,
    gone: Gone | None = None,
    deadline_s: float = 600.0,
) -> CarryOver:
    """Copy ``source``'s tombstones (and, for ``keep_expired``, documents whose item is ``gone``) into ``target``."""
    report = CarryOver()
    if source == target:
        return report
    client.indices.refresh(index=source)
    wanted: list[dict[str, Any]] = [{"term": {DELETED_FIELD: True}}]
    if projection.keep_expired and gone is not None:
        wanted.append({"term": {VISIBLE_FIELD: True}})
    query = {"query": {"bool": {"should": wanted, "minimum_should_match": 1}}}
    deadline = Deadline.after(deadline_s)
    hits = helpers.scan(client, query=query, index=source, size=CHUNK, version=True, preserve_order=False)
    for chunk in _chunks(hits, CHUNK):
        _copy(client, target, _selected(chunk, projection, gone), report, deadline)
    logger.info(
        "%s: carried %d tombstone(s) and %d kept document(s) from %s into %s (%d already there)",
        projection.name,
        report.tombstones,
        report.kept,
        source,
        target,
        report.present,
    )
    if report.refused:
        logger.warning(
            "%s: %d kept document(s) refused by the mapping of %s (not carried over)",
            projection.name,
            report.refused,
            target,
        )
    return report


def _selected(
    hits: list[dict[str, Any]], projection: DocumentProjection, gone: Gone | None
) -> list[dict[str, Any]]:
    """Tombstones, and the visible documents of a keep_expired projection whose item left the source."""
    tombstones = [hit for hit in hits if hit["_source"][META_FIELD].get("deleted")]
    live = [hit for hit in hits if not hit["_source"][META_FIELD].get("deleted")]
    if not live or gone is None or not projection.keep_expired:
        return tombstones
    ids = {item_id_of(hit["_id"], hit["_source"][META_FIELD]): hit for hit in live}
    absent = gone(list(ids))
    return tombstones + [hit for item_id, hit in ids.items() if item_id in absent]


def _copy(
    client: OpenSearch, target: str, hits: list[dict[str, Any]], report: CarryOver, deadline: Deadline
) -> None:
    if not hits:
        return

    def existing() -> set[str]:
        docs = client.mget(
            index=target, body={"ids": [hit["_id"] for hit in hits]}, realtime=True, _source=False
        )
        return {doc["_id"] for doc in docs["docs"] if doc.get("found")}

    present = retrying(deadline, is_retryable, what=f"mget from {target}")(existing)
    report.present += len(present)
    missing = [hit for hit in hits if hit["_id"] not in present]
    if not missing:
        return
    lines = []
    for hit in missing:
        action = {
            "index": {
                "_index": target,
                "_id": hit["_id"],
                "version": hit["_version"],
                "version_type": "external",
            }
        }
        lines.append(_encode_json(action) + "\n" + _encode_json(hit["_source"]) + "\n")
    payload = "".join(lines).encode()

    def send() -> dict[str, Any]:
        answer: dict[str, Any] = client.bulk(index=target, body=payload)
        return answer

    response = retrying(deadline, is_retryable, what=f"bulk copy into {target}")(send)
    failed = []
    for hit, entry in zip(missing, response["items"], strict=True):
        status = int(next(iter(entry.values())).get("status", 0))
        if 200 <= status < 300:
            if hit["_source"][META_FIELD].get("deleted"):
                report.tombstones += 1
            else:
                report.kept += 1
        elif status == 409:
            report.present += 1  # a newer write landed there first: it wins
        elif status == 400 and not hit["_source"][META_FIELD].get("deleted"):
            report.refused += 1  # a kept body the new mapping refuses; its item is gone, nothing to re-render
        else:
            failed.append(status)
    if failed:
        raise CarryOverError(
            f"{len(failed)} document(s) not copied into {target} (statuses {sorted(set(failed))})"
        )


def _chunks(hits: Iterable[dict[str, Any]], size: int) -> Iterable[list[dict[str, Any]]]:
    chunk: list[dict[str, Any]] = []
    for hit in hits:
        chunk.append(hit)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk
