"""Projections checked against the table they read: their key attributes must be the table's key.

A projection keyed by another attribute (``customer_id`` on a table keyed by ``order_id``) cannot name
the item a REMOVE deletes (a stream record's ``Keys`` hold only the table's key), so it is refused when
it loads: by ``projector setup`` and at the first batch of every Lambda cold start.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from projector.config.exceptions import ConfigurationError
from projector.projection.base import Projection

logger = logging.getLogger(__name__)

_ORDER = {"HASH": 0, "RANGE": 1}


class KeyMismatchError(ConfigurationError):
    """Projections whose key attributes are not the source table's key (partition key, then sort key)."""


def table_key(description: dict[str, Any]) -> tuple[str, ...]:
    """The key attributes of a DescribeTable ``Table``: partition key first, then the sort key if any."""
    schema = sorted(description["KeySchema"], key=lambda entry: _ORDER[entry["KeyType"]])
    return tuple(entry["AttributeName"] for entry in schema)


def describe_key(client: Any, table: str) -> tuple[str, ...] | None:
    """The source table's key attributes (one DescribeTable), or None when the table does not exist."""
    try:
        description = client.describe_table(TableName=table)["Table"]
    except client.exceptions.ResourceNotFoundException:
        return None
    return table_key(description)


def check_keys(projections: Iterable[Projection], table: str, key: tuple[str, ...]) -> None:
    """Raise one error naming every projection whose ``key_attributes`` differ from the table's key."""
    wrong = [projection for projection in projections if projection.source_key() != key]
    if not wrong:
        return
    lines = "; ".join(f"projection {p.name!r} has key_attributes {_show(p.source_key())}" for p in wrong)
    raise KeyMismatchError(
        f"{lines}, but table {table!r} is keyed by {_show(key)} (partition key, then sort key): "
        "set key_attributes to the table's key"
    )


def _show(key: Iterable[str]) -> str:
    return repr(tuple(key))
