"""The aggregates table: creation, and the meta row that says which generations are read and written.

One table (``PROJECTOR_AGGREGATES_TABLE``), keys ``pk`` (S) + ``sk`` (S), on-demand billing:

* contribution record ``{projection}#item#{item_id}`` / ``g{generation}``: the item's ItemState
  (life, rev, deleted, position, seen_at), its current ``contributions`` ``{group: {measure: N}}`` and a
  random ``token`` rewritten on every write, which the next write uses as its optimistic lock;
* group row ``{projection}#group#{group_key}`` / ``g{generation}``: one number attribute per measure,
  changed only by ``ADD`` in the same transaction as the records whose contributions moved;
* meta row ``{projection}#meta`` / ``meta``: ``read_generation``, ``write_generations`` (one normally, two
  during a rebuild), ``last_generation`` (never reused), the definition hash of the code that built the
  read generation (and of the one being built), and ``meta_version`` for compare-and-set. No meta row
  means generation 1 is read and written.

A rebuild fills a new generation beside the live one (every write reaches both), then switches reads
to it in one conditional write: readers never see a half-built aggregate.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from projector.exceptions import ProjectorError
from projector.retry.deadline import Deadline
from projector.retry.policy import retrying
from projector.retry.transient import error_code, is_transient
from projector.sinks.aggregates.calls import Calls
from projector.sinks.aggregates.keys import key, meta_pk
from projector.sinks.aggregates.numbers import number

if TYPE_CHECKING:
    from projector.config.settings import Settings
    from projector.projection.base import AggregateProjection

logger = logging.getLogger(__name__)

META_SK = "meta"
TABLE_ACTIVE_TIMEOUT_S = 120.0


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


class RebuildError(ProjectorError, RuntimeError):
    """A rebuild step that does not fit the stored state (none in progress, another definition, a race)."""


def ensure_table(client: Any, table_name: str) -> bool:
    """Create the aggregates table if absent (on-demand) and wait until ACTIVE. Returns True if created."""
    created = False
    try:
        status = client.describe_table(TableName=table_name)["Table"]["TableStatus"]
    except ClientError as error:
        if error_code(error) != "ResourceNotFoundException":
            raise
        try:
            client.create_table(
                TableName=table_name,
                AttributeDefinitions=[
                    {"AttributeName": "pk", "AttributeType": "S"},
                    {"AttributeName": "sk", "AttributeType": "S"},
                ],
                KeySchema=[
                    {"AttributeName": "pk", "KeyType": "HASH"},
                    {"AttributeName": "sk", "KeyType": "RANGE"},
                ],
                BillingMode="PAY_PER_REQUEST",
            )
            created = True
            logger.info("created aggregates table %s", table_name)
        except ClientError as race:
            if error_code(race) != "ResourceInUseException":  # someone else created it meanwhile
                raise
        status = "CREATING"
    end = time.monotonic() + TABLE_ACTIVE_TIMEOUT_S
    while status != "ACTIVE":
        if time.monotonic() > end:
            raise TimeoutError(f"table {table_name} is not ACTIVE after {TABLE_ACTIVE_TIMEOUT_S:.0f}s")
        time.sleep(0.5)
        status = client.describe_table(TableName=table_name)["Table"]["TableStatus"]
    return created


def meta_key(projection: AggregateProjection) -> dict[str, Any]:
    return key(meta_pk(projection.name), META_SK)


def decode_meta(item: dict[str, Any] | None) -> Meta:
    if not item:
        return Meta()
    return Meta(
        read_generation=int(item["read_generation"]["N"]),
        write_generations=tuple(sorted(int(g) for g in item["write_generations"]["NS"])),
        last_generation=int(item["last_generation"]["N"]),
        definition_hash=item.get("definition_hash", {}).get("S"),
        building_hash=item.get("building_hash", {}).get("S"),
        version=int(item["meta_version"]["N"]),
    )


def read_meta(calls: Calls, table_name: str, projection: AggregateProjection) -> Meta:
    """The projection's generations (consistent read, retried on transient errors)."""
    for attempt in retrying(calls.deadline, is_transient, what=f"{projection.name} meta read"):
        with attempt:
            response = calls("get_item", TableName=table_name, Key=meta_key(projection), ConsistentRead=True)
    return decode_meta(response.get("Item"))


def write_meta(
    calls: Calls, table_name: str, projection: AggregateProjection, previous: Meta, new: Meta
) -> bool:
    """Compare-and-set the meta row; False when it changed since ``previous`` was read."""
    item: dict[str, Any] = {
        **meta_key(projection),
        "projection": {"S": projection.name},
        "read_generation": number(new.read_generation),
        "write_generations": {"NS": [str(g) for g in new.write_generations]},
        "last_generation": number(new.last_generation),
        "meta_version": number(previous.version + 1),
    }
    if new.definition_hash:
        item["definition_hash"] = {"S": new.definition_hash}
    if new.building_hash:
        item["building_hash"] = {"S": new.building_hash}
    condition: dict[str, Any] = (
        {
            "ConditionExpression": "meta_version = :v",
            "ExpressionAttributeValues": {":v": number(previous.version)},
        }
        if previous.exists
        else {"ConditionExpression": "attribute_not_exists(pk)"}
    )
    try:
        for attempt in retrying(calls.deadline, is_transient, what=f"{projection.name} meta write"):
            with attempt:
                calls("put_item", TableName=table_name, Item=item, **condition)
    except ClientError as error:
        if error_code(error) == "ConditionalCheckFailedException":
            return False
        raise
    return True


@dataclass(frozen=True, slots=True)
class Description:
    """What ``describe`` reports: generations, and whether the stored build matches the code."""

    name: str
    read_generation: int
    write_generations: tuple[int, ...]
    building_generation: int | None
    stored_hash: str | None
    building_hash: str | None
    code_hash: str

    @property
    def rebuilding(self) -> bool:
        return self.building_generation is not None

    @property
    def needs_rebuild(self) -> bool:
        """The read generation was built by other code (unknown when no meta row was ever written)."""
        return self.stored_hash is not None and self.stored_hash != self.code_hash

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "read_generation": self.read_generation,
            "write_generations": list(self.write_generations),
            "building_generation": self.building_generation,
            "stored_hash": self.stored_hash,
            "building_hash": self.building_hash,
            "code_hash": self.code_hash,
            "rebuilding": self.rebuilding,
            "needs_rebuild": self.needs_rebuild,
        }


class AggregateTable:
    """Rebuild primitives over the meta row; every step is one compare-and-set, safe to race."""

    def __init__(self, client: Any, settings: Settings, deadline: Deadline | None = None) -> None:
        self._client = client
        self.table_name = settings.aggregates_table
        self._deadline = deadline or Deadline.never()

    def _calls(self) -> Calls:
        return Calls(self._client, self._deadline)

    def meta(self, projection: AggregateProjection) -> Meta:
        return read_meta(self._calls(), self.table_name, projection)

    def describe(self, projection: AggregateProjection) -> Description:
        meta = self.meta(projection)
        return Description(
            name=projection.name,
            read_generation=meta.read_generation,
            write_generations=meta.write_generations,
            building_generation=meta.building_generation,
            stored_hash=meta.definition_hash,
            building_hash=meta.building_hash,
            code_hash=projection.definition_hash(),
        )

    def begin_rebuild(self, projection: AggregateProjection) -> int:
        """Add a fresh generation to the write set and return it.

        Resumable: if a rebuild of the same definition is already in progress its generation is returned.
        A generation number is never reused, so rows left by a rolled-back rebuild cannot leak in.
        """
        code_hash = projection.definition_hash()
        calls = self._calls()
        meta = read_meta(calls, self.table_name, projection)
        building = meta.building_generation
        if building is not None:
            if meta.building_hash == code_hash:
                logger.info("%s: resuming the rebuild of generation %d", projection.name, building)
                return building
            raise RebuildError(
                f"{projection.name}: generation {building} is being rebuilt for another "
                f"definition ({meta.building_hash}, code is {code_hash}); roll it back first"
            )
        new = meta.last_generation + 1
        updated = Meta(
            read_generation=meta.read_generation,
            write_generations=(meta.read_generation, new),
            last_generation=new,
            definition_hash=meta.definition_hash,
            building_hash=code_hash,
        )
        if not write_meta(calls, self.table_name, projection, meta, updated):
            raise RebuildError(f"{projection.name}: meta row changed while beginning a rebuild; try again")
        logger.info(
            "%s: rebuilding into generation %d (reads stay on %d)", projection.name, new, meta.read_generation
        )
        return new

    def finish_rebuild(self, projection: AggregateProjection) -> int:
        """Switch reads to the rebuilt generation; returns it.

        The old generation stays in the write set (it keeps receiving every change) until the next rebuild
        begins, so a rollback returns to an exact generation.
        """
        calls = self._calls()
        meta = read_meta(calls, self.table_name, projection)
        building = meta.building_generation
        if building is None:
            raise RebuildError(f"{projection.name}: no rebuild in progress")
        updated = Meta(
            read_generation=building,
            write_generations=(building, meta.read_generation),
            last_generation=meta.last_generation,
            definition_hash=meta.building_hash,
        )
        if not write_meta(calls, self.table_name, projection, meta, updated):
            raise RebuildError(f"{projection.name}: meta row changed while finishing the rebuild; try again")
        logger.info("%s: reads switched to generation %d", projection.name, building)
        return building

    def rollback(self, projection: AggregateProjection) -> None:
        """Abandon the rebuild in progress: writes go to the read generation only (no-op if none)."""
        calls = self._calls()
        meta = read_meta(calls, self.table_name, projection)
        if not meta.rebuilding:
            return
        updated = Meta(
            read_generation=meta.read_generation,
            write_generations=(meta.read_generation,),
            last_generation=meta.last_generation,
            definition_hash=meta.definition_hash,
        )
        if not write_meta(calls, self.table_name, projection, meta, updated):
            raise RebuildError(f"{projection.name}: meta row changed while rolling back; try again")
        logger.info("%s: rebuild of generation %s rolled back", projection.name, meta.building_generation)
