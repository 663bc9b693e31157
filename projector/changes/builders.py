"""Turn stream records and scanned items into Changes."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from projector.changes.types import BackfillStamp, Change, ChangeKind, StreamPosition

if TYPE_CHECKING:
    from projector.records import StreamRecord


def change_from_record(record: StreamRecord, batch_index: int, raw: dict[str, Any] | None = None) -> Change:
    """Decode a parsed stream record (raises MalformedRecordError on bad images)."""
    kind = ChangeKind(record.eventName)
    return Change(
        keys=record.keys(),
        kind=kind,
        new_image=record.new_image(),
        old_image=record.old_image(),
        position=StreamPosition(created_at=record.created_at, sequence=record.sequence_number),
        expired=record.is_ttl_delete,
        record=raw if raw is not None else record.to_lambda_json(),
        batch_index=batch_index,
    )


def change_from_item(
    item: dict[str, Any],
    key_attributes: tuple[str, ...],
    stamp: BackfillStamp,
    batch_index: int = 0,
    raw: dict[str, Any] | None = None,
) -> Change:
    """A scanned item as an upsert: ranked by its version attribute, or below the scan start (stream mode)."""
    return Change(
        keys={name: item[name] for name in key_attributes},
        kind=ChangeKind.INSERT,
        new_image=item,
        old_image=None,
        backfill=stamp,
        record=raw,
        batch_index=batch_index,
    )
