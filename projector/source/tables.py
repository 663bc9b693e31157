"""Creating a table projector reads through its stream (a source table, an events table)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def create_streamed_table(client: Any, table: str, key_definition: Mapping[str, Any]) -> bool:
    """An on-demand table with a NEW_AND_OLD_IMAGES stream, waited for until it exists; False if it
    already existed. ``key_definition`` holds its ``AttributeDefinitions`` and ``KeySchema``."""
    try:
        client.create_table(
            TableName=table,
            BillingMode="PAY_PER_REQUEST",
            StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"},
            **key_definition,
        )
    except client.exceptions.ResourceInUseException:
        return False
    client.get_waiter("table_exists").wait(TableName=table, WaiterConfig={"Delay": 1, "MaxAttempts": 60})
    return True
