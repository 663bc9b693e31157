"""Keys, attribute codecs and counters shared by the aggregate writer, the reader and the table admin.

Every number goes through ``Decimal`` and DynamoDB's ``N`` type as text: a float never appears, so a
sum of amounts stays exact to the last digit. The arithmetic and DynamoDB's number rule live in
``numbers.py``; the key mapping that keeps every partition key within DynamoDB's limit in ``keys.py``.
"""

from __future__ import annotations

import logging
import uuid
from collections import Counter
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from projector.retry.aws import error_code, is_transient_aws_error
from projector.retry.policy import DeadlineExceeded
from projector.sinks.aggregates import numbers
from projector.sinks.aggregates.keys import GROUP_KEY_ATTRIBUTE, fitted
from projector.sinks.aggregates.packing import Unit
from projector.stores.base import ItemChanges, SinkResult
from projector.versioning.state import ItemState

if TYPE_CHECKING:
    from projector.changes.types import Change
    from projector.retry.deadline import Deadline

logger = logging.getLogger(__name__)

MAX_TRANSACTION_ACTIONS = 100
BATCH_GET_KEYS = 100
RESERVED_ATTRIBUTES = frozenset({"pk", "sk", GROUP_KEY_ATTRIBUTE})

Contributions = dict[str, dict[str, Decimal]]
"""What one item adds to each of its groups: ``{group_key: {measure: value}}``."""

AttributeValue = dict[str, Any]

# Per-action codes of a cancelled transaction that another attempt can get past.
TRANSIENT_REASONS = frozenset(
    {
        "TransactionConflict",
        "ThrottlingError",
        "ProvisionedThroughputExceeded",
        "None",
    }
)


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


def number(value: Decimal | int) -> AttributeValue:
    """A DynamoDB number in plain notation (never ``1E+2``), exact."""
    return {"N": numbers.to_text(value)}


def decimal_of(value: AttributeValue) -> Decimal:
    return numbers.parse(value["N"])


add = numbers.add
subtract = numbers.subtract


def encode_contributions(contributions: Contributions) -> AttributeValue:
    return {
        "M": {
            group: {"M": {name: number(value) for name, value in measures.items()}}
            for group, measures in contributions.items()
        }
    }


def decode_contributions(value: AttributeValue | None) -> Contributions:
    if not value:
        return {}
    return {
        group: {name: decimal_of(v) for name, v in measures["M"].items()}
        for group, measures in value["M"].items()
    }


def diff(new: Contributions, old: Contributions) -> Contributions:
    """``new - old`` per group and measure, without zeros (a group whose share did not move is untouched).

    Raises ``NumberOutOfRange`` (naming the measure) when a new value or a difference cannot be stored.
    """
    result: Contributions = {}
    for group in sorted(new.keys() | old.keys()):
        after, before = new.get(group, {}), old.get(group, {})
        deltas: dict[str, Decimal] = {}
        for name in sorted(after.keys() | before.keys()):
            value = numbers.check(after.get(name, Decimal(0)), f"measure {name!r}")
            change = numbers.check(
                subtract(value, before.get(name, Decimal(0))), f"a change of measure {name!r}"
            )
            if change != 0:
                deltas[name] = change
        if deltas:
            result[group] = deltas
    return result


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


@dataclass(slots=True)
class GenerationWrite:
    """One contribution record to put and the group deltas that go with it."""

    generation: int
    read_token: str | None
    state: ItemState
    contributions: Contributions
    deltas: Contributions
    token: str = field(default_factory=lambda: uuid.uuid4().hex)


@dataclass(slots=True)
class ItemPlan:
    """An item's folded changes: the writes per generation, and how its changes were judged."""

    item: ItemChanges
    writes: list[GenerationWrite] = field(default_factory=list)
    applied: int = 0
    stale: int = 0
    poison: list[tuple[Change, str]] = field(default_factory=list)
    last: Change | None = None
    committed: int = 0  # generations already written one by one (``AggregateSink._send``)
    partial: bool = False  # a step of emptying a record stored past the group limit (not the change yet)

    @property
    def unit(self) -> Unit[ItemPlan]:
        groups = frozenset(f"g{w.generation}:{group}" for w in self.writes for group in w.deltas)
        return Unit(self, len(self.writes), groups)


@dataclass(frozen=True, slots=True)
class Meta:
    """Which generations of a projection are read and written. ``version`` 0: no meta row yet."""

    read_generation: int = 1
    write_generations: tuple[int, ...] = (1,)
    last_generation: int = 1
    definition_hash: str | None = None
    building_hash: str | None = None
    version: int = 0

    @property
    def exists(self) -> bool:
        return self.version > 0

    @property
    def rebuilding(self) -> bool:
        return self.building_generation is not None

    @property
    def building_generation(self) -> int | None:
        """A written generation newer than the read one: the rebuild in progress."""
        newer = [g for g in self.write_generations if g > self.read_generation]
        return max(newer) if newer else None

    @property
    def previous_generation(self) -> int | None:
        """A written generation older than the read one: kept exact after a rebuild, for rollback."""
        older = [g for g in self.write_generations if g < self.read_generation]
        return max(older) if older else None


@dataclass(slots=True)
class AggregateResult(SinkResult):
    """A SinkResult plus what the batch cost in writes, so tests and benchmarks can check the coalescing.

    ``group_writes`` counts group-row ``ADD`` updates sent per ``g{generation}:{group}`` (attempts that
    were cancelled included): one per touched group per batch whenever the group's items fit one transaction.
    """

    transactions: int = 0
    record_writes: int = 0
    group_writes: Counter[str] = field(default_factory=Counter)

    @property
    def max_group_writes(self) -> int:
        return max(self.group_writes.values(), default=0)


class Calls:
    """Sends DynamoDB requests, counting them, and never starts one once the deadline has passed."""

    def __init__(self, client: Any, deadline: Deadline) -> None:
        self.client = client
        self.deadline = deadline
        self.count = 0

    def __call__(self, operation: str, **kwargs: Any) -> dict[str, Any]:
        if self.deadline.expired:
            raise DeadlineExceeded(f"no time left for {operation}")
        self.count += 1
        return getattr(self.client, operation)(**kwargs)


def is_transient(error: BaseException) -> bool:
    """Capacity, server and connection errors: the same request may succeed later."""
    return is_transient_aws_error(error)


def describe_error(error: BaseException) -> str:
    code = error_code(error)
    text = str(error) or type(error).__name__
    if code:
        return f"{code}: {text}"
    return text if type(error).__name__.startswith("_") else f"{type(error).__name__}: {text}"
