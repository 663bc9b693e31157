"""Redriving a backfill dead letter: re-read the item it names and apply its current state.

A backfill letter's record is the scanned item as DynamoDB JSON, not a stream record, so it cannot be
replayed as one. Its key is enough: the item is read again (consistently) and goes through the same
path as a scanned page, stamped now, so whatever the stream wrote since still ranks as it should. An
item gone from the table has nothing left to apply (its REMOVE reached the projection through the
stream): the letter counts as redriven.
"""

from __future__ import annotations

import base64
import logging
import time
from typing import TYPE_CHECKING, Any

from projector.backfill.apply import PageApplier
from projector.backfill.scanner import Page, SourceTable

if TYPE_CHECKING:
    from projector.deadletters.types import DeadLetter
    from projector.runtime import Runtime

logger = logging.getLogger(__name__)


def is_backfill_letter(letter: DeadLetter) -> bool:
    """A letter written by the backfill: its record is an item, not a stream record."""
    record = letter.record
    return isinstance(record, dict) and "dynamodb" not in record and "eventName" not in record


def redrive_backfill_letter(runtime: Runtime, letter: DeadLetter) -> tuple[bool, str | None]:
    """Apply the named item's current state to the letter's projection(s); (redriven, error)."""
    source = SourceTable.describe(runtime.dynamodb, runtime.settings.source_table)
    try:
        key = {name: _binary(letter.record[name]) for name in source.key_attributes}
    except (KeyError, TypeError) as error:
        return False, f"the letter's item has no key {source.key_attributes}: {error}"
    sent_at = time.time()
    found = runtime.dynamodb.get_item(TableName=source.name, Key=key, ConsistentRead=True).get("Item")
    if found is None:
        return True, None
    registry = runtime.registry
    projections = [registry.get(letter.projection)] if letter.projection else list(registry.all)
    sinks = {p.name: runtime.store_for(p) for p in projections}
    applier = PageApplier(
        projections, sinks, source.key_attributes, scan_started_at=sent_at, dead_letters=None
    )
    outcome = applier.apply(Page(segment=0, items=[found], next_key=None, read_at=sent_at))
    if outcome.ok:
        return True, None
    return False, next(iter(outcome.failures.values()))


def _binary(value: dict[str, Any]) -> dict[str, Any]:
    """Key values as GetItem wants them: binary keys were stored base64-encoded in the letter."""
    if "B" in value and isinstance(value["B"], str):
        return {"B": base64.b64decode(value["B"])}
    return value
