"""What one aggregate transaction sends, and what DynamoDB may refuse in it.

``transaction_actions`` turns packed item plans into ``TransactWriteItems`` actions: each record Put
conditioned on the token it was read with, then one ``ADD`` per group row with the summed deltas (and
the full group key, ``group-key``). ``group_limit_refusal`` is the per-item group rule that keeps every
stored record removable in one transaction.
"""

from __future__ import annotations

import logging
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from projector.exceptions import ProjectorError
from projector.sinks.aggregates.contributions import Contributions
from projector.sinks.aggregates.keys import GROUP_KEY_ATTRIBUTE, generation_sk, group_pk, key
from projector.sinks.aggregates.numbers import add, fits, number
from projector.sinks.aggregates.records import encode_record

if TYPE_CHECKING:
    from projector.sinks.aggregates.plans import ItemPlan

logger = logging.getLogger(__name__)

# Refusals of what a request holds: the whole request (ValidationException), or one action of it.
REFUSED_REQUEST = frozenset({"ValidationException"})
REFUSED_ACTION = frozenset({"ValidationError", "ItemCollectionSizeLimitExceeded"})


class Refused(ProjectorError):
    """DynamoDB refused a transaction for what it holds (a key, an item's size, a number): not retryable."""


def group_limit_refusal(
    projection: str, max_actions: int, before: Contributions, after: Contributions
) -> str | None:
    """Why a record cannot move from ``before`` to ``after``, or None.

    The limit counts the item's groups old and new: a record stored within it can always be removed
    (one Put plus one ADD per stored group), so a deleted item never stays counted.
    """
    limit = max_actions - 1
    touched = len(before.keys() | after.keys())
    if touched > limit:
        return (
            f"{projection}: an item's change touches {touched} groups (old and new); "
            f"at most {limit} groups per item (one transaction of {max_actions} actions)"
        )
    return None


def transaction_actions(
    table: str, projection: str, plans: list[ItemPlan]
) -> tuple[list[dict[str, Any]], list[str | None], list[str]]:
    """Record Puts (token-conditioned) then one ADD per group row; owners of each action; group labels."""
    actions: list[dict[str, Any]] = []
    owners: list[str | None] = []
    totals: dict[tuple[int, str], dict[str, Decimal]] = {}
    for plan in plans:
        for write in plan.writes:
            item = encode_record(
                projection, plan.item.item_id, write.generation, write.state, write.contributions, write.token
            )
            put: dict[str, Any] = {"TableName": table, "Item": item}
            if write.read_token is None:
                put["ConditionExpression"] = "attribute_not_exists(pk)"
            else:
                put.update(
                    ConditionExpression="#token = :token",
                    ExpressionAttributeNames={"#token": "token"},
                    ExpressionAttributeValues={":token": {"S": write.read_token}},
                )
            actions.append({"Put": put})
            owners.append(plan.item.item_id)
            for group, deltas in write.deltas.items():
                bucket = totals.setdefault((write.generation, group), {})
                for measure, value in deltas.items():
                    bucket[measure] = add(bucket.get(measure, Decimal(0)), value)
    labels: list[str] = []
    for (generation, group), deltas in sorted(totals.items()):
        measures = sorted(m for m, value in deltas.items() if value != 0)
        if not measures:
            continue
        if not all(fits(deltas[m]) for m in measures):  # each item's own delta fits: send them apart
            raise Refused("the summed change of a group row needs more digits than DynamoDB keeps")
        adds = ", ".join(f"#m{i} :m{i}" for i in range(len(measures)))
        actions.append(
            {
                "Update": {
                    "TableName": table,
                    "Key": key(group_pk(projection, group), generation_sk(generation)),
                    "UpdateExpression": f"SET #group = :group ADD {adds}",
                    "ExpressionAttributeNames": {
                        "#group": GROUP_KEY_ATTRIBUTE,
                        **{f"#m{i}": m for i, m in enumerate(measures)},
                    },
                    "ExpressionAttributeValues": {
                        ":group": {"S": group},
                        **{f":m{i}": number(deltas[m]) for i, m in enumerate(measures)},
                    },
                }
            }
        )
        owners.append(None)
        labels.append(f"g{generation}:{group}")
    return actions, owners, labels
