"""Create what the projections need; idempotent, so it is safe on every deploy and in every test."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, TypedDict

from projector.source.tables import create_streamed_table

if TYPE_CHECKING:
    from projector.runtime import Runtime

logger = logging.getLogger(__name__)


class SourceTableReport(TypedDict):
    name: str
    created: bool  # False: it was there already


class IndexReport(TypedDict):
    projection: str
    alias: str


class SetupReport(TypedDict):
    """What ``setup`` made sure of (``projector setup --json`` prints it)."""

    indexes: list[IndexReport]
    aggregates_table: str | None
    source_table: SourceTableReport | None


def create_source_table(client: Any, table: str, key_attributes: tuple[str, ...]) -> bool:
    """The source table with a NEW_AND_OLD_IMAGES stream (local use); False if it already exists."""
    kinds = ("HASH", "RANGE")
    key_definition = {
        "AttributeDefinitions": [{"AttributeName": name, "AttributeType": "S"} for name in key_attributes],
        "KeySchema": [
            {"AttributeName": name, "KeyType": kind}
            for name, kind in zip(key_attributes, kinds, strict=False)
        ],
    }
    return create_streamed_table(client, table, key_definition)


def check_source_key(runtime: Runtime) -> tuple[str, ...] | None:
    """Every projection's key attributes against the source table's key (one DescribeTable), before
    anything is created; the key, or None when the table does not exist yet (then nothing is checked)."""
    from projector.projection.validation import check_keys, describe_key

    table = runtime.settings.source_table
    key = describe_key(runtime.dynamodb, table)
    if key is None:
        logger.warning("source table %s does not exist yet: key attributes not checked", table)
        return None
    check_keys(runtime.registry.all, table, key)
    return key


def setup(runtime: Runtime, with_source_table: bool = False) -> SetupReport:
    """Index templates, first physical indexes and aliases, the aggregates table; optionally the source.

    Refuses (ConfigurationError) a projection whose key attributes are not the source table's key.
    """
    settings, registry = runtime.settings, runtime.registry
    report: SetupReport = {"indexes": [], "aggregates_table": None, "source_table": None}
    if with_source_table:
        from projector.events.projection import layout_for  # events hook: an events table as the source

        layout = layout_for(registry.all)
        if layout is not None:
            from projector.events.store import create_events_table

            created = create_events_table(runtime.dynamodb, settings.source_table, layout)
        else:
            keys = registry.all[0].key_attributes
            created = create_source_table(runtime.dynamodb, settings.source_table, keys)
        report["source_table"] = {"name": settings.source_table, "created": created}
    check_source_key(runtime)
    if registry.documents:
        from projector.sinks.opensearch import indexes

        for projection in registry.documents:
            indexes.ensure(runtime.opensearch, projection, settings.index_prefix)
            report["indexes"].append(
                {"projection": projection.name, "alias": settings.index_prefix + projection.name}
            )
    if registry.aggregates:
        from projector.sinks.aggregates.table import ensure_table

        ensure_table(runtime.dynamodb, settings.aggregates_table)
        report["aggregates_table"] = settings.aggregates_table
    return report
