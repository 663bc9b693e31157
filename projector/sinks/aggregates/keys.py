"""Partition keys of the aggregates table that always fit DynamoDB's 2,048-byte partition key.

A natural key is ``{projection}#item#{item_id}`` or ``{projection}#group#{group}``. When that is longer
than DynamoDB allows (a long group, a long binary or composite item key, many multi-byte characters),
the key becomes ``{projection}#item~sha256#{digest}`` (``group~sha256``), the SHA-256 of the full natural
id. It cannot collide with a natural key: a projection name has no ``#``, so a natural key always has
``#item#``/``#group#`` right after the name, and a hashed one ``#item~``/``#group~``. The full id stays in
the row (``item_id`` of a contribution record, ``group-key`` of a group row), so readers and verify
never need to reverse the digest. The mapping is stable: the same id always gives the same key.
"""

from __future__ import annotations

import hashlib
import logging

from projector.sinks.aggregates.numbers import AttributeValue

logger = logging.getLogger(__name__)

MAX_PARTITION_KEY_BYTES = 2048
HASHED = "~sha256"
GROUP_KEY_ATTRIBUTE = "group-key"
"""The full group key on every group row (a name no measure can have: measures are [a-z0-9_])."""
RESERVED_ATTRIBUTES = frozenset({"pk", "sk", GROUP_KEY_ATTRIBUTE})


def fitted(projection: str, kind: str, natural_id: str) -> str:
    """``{projection}#{kind}#{natural_id}``, or its hashed form when that exceeds 2,048 UTF-8 bytes."""
    natural = f"{projection}#{kind}#{natural_id}"
    encoded = natural.encode("utf-8", "surrogatepass")
    if len(encoded) <= MAX_PARTITION_KEY_BYTES:
        return natural
    digest = hashlib.sha256(natural_id.encode("utf-8", "surrogatepass")).hexdigest()
    return f"{projection}#{kind}{HASHED}#{digest}"


def group_of(pk: str, projection: str) -> str | None:
    """The natural group of a group row's partition key, ``None`` for a hashed one (read the row)."""
    prefix = f"{projection}#group#"
    return pk[len(prefix) :] if pk.startswith(prefix) else None


def projection_of_group_row(pk: str) -> str | None:
    """The projection a group row belongs to (natural or hashed key), ``None`` for any other row."""
    name, sep, rest = pk.partition("#")
    if sep and (rest.startswith("group#") or rest.startswith(f"group{HASHED}#")):
        return name
    return None


def item_pk(projection: str, item_id: str) -> str:
    """The record's partition key: natural, or hashed when too long for DynamoDB (``keys.py``)."""
    return fitted(projection, "item", item_id)


def group_pk(projection: str, group: str) -> str:
    """The group row's partition key: natural, or hashed when too long for DynamoDB (``keys.py``)."""
    return fitted(projection, "group", group)


def meta_pk(projection: str) -> str:
    return f"{projection}#meta"


def generation_sk(generation: int) -> str:
    return f"g{generation}"


def key(pk: str, sk: str) -> dict[str, AttributeValue]:
    return {"pk": {"S": pk}, "sk": {"S": sk}}
