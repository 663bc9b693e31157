"""Turn stream records and scanned items into Changes."""

from __future__ import annotations

from functools import partial
from typing import TYPE_CHECKING, Any

from projector.changes.types import BackfillStamp, Change, ChangeKind, StreamPosition
from projector.records.decoder import decode_image

if TYPE_CHECKING:
    from projector.records import StreamRecord

_KINDS = {kind.value: kind for kind in ChangeKind}  # a dict lookup: calling the enum costs microseconds


def change_from_record(record: StreamRecord, batch_index: int, raw: dict[str, Any] | None = None) -> Change:
    """Decode a parsed stream record (raises MalformedRecordError on bad images).

    Every image is checked here, so a malformed record is dead-lettered whole before anything applies it.
    A MODIFY's OldImage is only read by some revision checks, so it is checked against the NewImage (only
    the attributes that differ are decoded) and decoded in full on first read; a REMOVE's is decoded now.
    """
    kind = _KINDS[record.eventName]  # validated: one of the three
    new_image = record.new_image()
    deferred = False
    if new_image is not None and kind is not ChangeKind.REMOVE and record.dynamodb.OldImage is not None:
        record.check_old_image(new_image)
        deferred = True
    change = Change(
        keys=record.keys(),
        kind=kind,
        new_image=new_image,
        old_image=None if deferred else record.old_image(),
        position=StreamPosition(created_at=record.created_at, sequence=record.sequence_number),
        expired=record.is_ttl_delete,
        record=raw if raw is not None else record.to_lambda_json(),
        batch_index=batch_index,
    )
    if deferred:
        # Checked above, so decoding cannot fail; the partial holds the raw image only, not the record.
        change.defer_old_image(partial(decode_image, record.dynamodb.OldImage))
    return change


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
