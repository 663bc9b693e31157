"""An item's contribution record: its version state and its share of each group, per generation."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from projector.sinks.aggregates.contributions import (
    Contributions,
    decode_contributions,
    encode_contributions,
)
from projector.sinks.aggregates.keys import generation_sk, item_pk, key
from projector.sinks.aggregates.numbers import AttributeValue, number
from projector.versioning.state import ItemState


@dataclass(frozen=True, slots=True)
class StoredRecord:
    """One item's contribution record in one generation, as read."""

    state: ItemState
    contributions: Contributions
    token: str


def encode_record(
    projection: str, item_id: str, generation: int, state: ItemState, contributions: Contributions, token: str
) -> dict[str, AttributeValue]:
    item: dict[str, AttributeValue] = {
        **key(item_pk(projection, item_id), generation_sk(generation)),
        "item_id": {"S": item_id},
        "life": number(state.life),
        "rev": number(state.rev),
        "deleted": {"BOOL": state.deleted},
        "seen_at": number(Decimal(repr(state.seen_at))),  # exact text of the float
        "contributions": encode_contributions(contributions),
        "token": {"S": token},
    }
    if state.position is not None:
        item["position"] = {"S": state.position}
    if state.digest is not None:
        item["digest"] = {"S": state.digest}
    return item


def decode_record(item: dict[str, AttributeValue]) -> StoredRecord:
    state = ItemState.from_dict(
        {
            "life": int(item["life"]["N"]),
            "rev": int(item["rev"]["N"]),
            "deleted": item["deleted"]["BOOL"],
            "position": item["position"]["S"] if "position" in item else None,
            "seen_at": item["seen_at"]["N"],
            "digest": item["digest"]["S"] if "digest" in item else None,
        }
    )
    return StoredRecord(
        state=state, contributions=decode_contributions(item.get("contributions")), token=item["token"]["S"]
    )
