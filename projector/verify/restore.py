"""Recognise a source table whose versions went backwards (a restore from a backup, a rewrite).

The version rules drop every change at or below the stored version as stale, so after a restore every
update of an item is ignored until its version climbs past the one stored before; nothing else would
say so. Verify names it: an item whose projection holds a newer version of the same life than the
table's current item. The cure is a rebuild, which builds every projection from the table as it is now.
"""

from __future__ import annotations

import logging
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Protocol

from projector.projection.base import AggregateProjection, AttributeVersion
from projector.records import DecodeError, decode_image
from projector.retry import Deadline
from projector.retry.batch_get import batch_get_consistent
from projector.sinks.aggregates.keys import generation_sk, item_pk, key
from projector.sinks.aggregates.records import decode_record

if TYPE_CHECKING:
    from projector.runtime import Runtime
    from projector.source.items import Source
    from projector.verify.types import Verdict

logger = logging.getLogger(__name__)


class _Page(Protocol):
    """What is read of a scan page here (``Source.scan`` hands out its pages)."""

    @property
    def items(self) -> list[dict[str, Any]]: ...


def search_backwards(verdict: Verdict) -> int:
    """Stale documents of a search projection whose stored version is above the item's current one."""
    count = 0
    for finding in verdict.findings:
        stored, version = finding.detail.get("stored"), finding.detail.get("source_version")
        if finding.kind != "stale" or not stored or not isinstance(version, int):
            continue
        if not stored["deleted"] and stored["rev"] > version:
            count += 1
    return count


def aggregate_backwards(
    runtime: Runtime, projection: AggregateProjection, generation: int, source: Source
) -> int:
    """Items whose contribution record (read generation) holds a newer version than the table's item.

    Reads every contribution record once, so verify calls it only for a projection with stable drift.
    """
    if not isinstance(projection.version, AttributeVersion):
        return 0
    attribute = projection.version.attribute
    versions: dict[str, int] = {}

    def on_page(page: _Page) -> None:
        for raw in page.items:
            try:
                item = decode_image(raw)
                version = item.get(attribute)
                if isinstance(version, Decimal) and version == version.to_integral_value():
                    versions[projection.item_id(item)] = int(version)
            except (DecodeError, ValueError, KeyError):
                continue

    source.scan(on_page)
    records = _records(runtime, projection.name, generation, list(versions))
    return sum(1 for item_id, state in records.items() if not state.deleted and state.rev > versions[item_id])


def _records(runtime: Runtime, name: str, generation: int, item_ids: list[str]) -> dict[str, Any]:
    table = runtime.settings.aggregates_table
    states: dict[str, Any] = {}
    id_by_pk = {item_pk(name, item_id): item_id for item_id in item_ids}

    def on_item(raw: dict[str, Any]) -> None:
        states[id_by_pk[raw["pk"]["S"]]] = decode_record(raw).state

    keys = [key(item_pk(name, item_id), generation_sk(generation)) for item_id in item_ids]
    batch_get_consistent(
        runtime.dynamodb.batch_get_item, table, keys, on_item, Deadline.never(), f"BatchGetItem on {table}"
    )
    return states
