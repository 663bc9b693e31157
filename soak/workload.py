"""The soak's random workload on the source table, written straight to the moto server (no proxy).

Writer threads make the changes of ``devservers.workload``: inserts, version-bumped updates, group moves
(customer, day), cancellations, deletes and re-creations of deleted keys, with a few hot keys that the
writers race on (conditional writes: a lost race is counted, not retried). A few *poison* versions are
written too: an order whose ``created_at`` is not a date (OpenSearch's mapping rejects it) or whose
``total`` is a string (no projection can use it). Each is overwritten by a valid version a little later,
and ``fix_poison`` repairs any left at the end, so the final state is projectable and the dead letters
those versions produced become stale (redrivable).
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.exceptions import ClientError

from devservers.workload import make_order, seed_orders

logger = logging.getLogger(__name__)

POISON_FLAVOURS = ("bad_date", "bad_total")
_serializer, _deserializer = TypeSerializer(), TypeDeserializer()


@dataclass(frozen=True, slots=True)
class WorkloadOptions:
    writers: int = 3
    rate: float = 12.0  # changes per second, all writers together
    seed_orders: int = 1000
    insert_share: float = 0.08
    hot_keys: int = 6
    hot_share: float = 0.3
    poison: int = 6
    poison_fix_after_s: tuple[float, float] = (2.0, 20.0)
    #: A poison version is fixed once it was dead-lettered (so dead letters exist), or after this long.
    poison_fix_latest_s: float = 60.0


@dataclass(slots=True)
class _Poisoned:
    fix_at: float
    flavour: str
    latest: float


@dataclass(slots=True)
class WorkloadState:
    """Keys ever written, the hot ones, the poison schedule and what is poisoned now (under ``lock``)."""

    keys: list[str] = field(default_factory=list)
    hot: list[str] = field(default_factory=list)
    poison_due: list[float] = field(default_factory=list)
    poisoned: dict[str, _Poisoned] = field(default_factory=dict)
    ever_poisoned: set[str] = field(default_factory=set)
    next_key: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)


class Workload:
    """Seeds the table, then writes until ``stop``; ``counts`` holds every outcome by kind."""

    def __init__(
        self,
        client: Any,
        table: str,
        options: WorkloadOptions,
        seed: int,
        duration_s: float,
        dead_lettered: Callable[[str], bool] | None = None,
    ) -> None:
        self.client = client
        self.dead_lettered = dead_lettered
        self.table = table
        self.options = options
        self.seed = seed
        self.duration_s = duration_s
        self.state = WorkloadState()
        self.counts: Counter[str] = Counter()
        self._counts_lock = threading.Lock()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._started = 0.0

    # life cycle --------------------------------------------------------------------------------------------
    def seed_table(self) -> int:
        orders = seed_orders(self.client, self.table, self.options.seed_orders, seed=self.seed)
        rng = random.Random(self.seed)
        with self.state.lock:
            self.state.keys = [order["order_id"] for order in orders]
            self.state.next_key = len(orders)
            self.state.hot = rng.sample(self.state.keys, min(self.options.hot_keys, len(self.state.keys)))
        return len(orders)

    def start(self) -> None:
        self._started = time.monotonic()
        rng = random.Random(self.seed + 1)
        # poison versions spread over the first 80 % of the run, so each is fixed while faults still go on
        self.state.poison_due = sorted(
            rng.uniform(0.05, 0.8) * self.duration_s for _ in range(self.options.poison)
        )
        for number in range(self.options.writers):
            thread = threading.Thread(
                target=self._write_loop,
                args=(random.Random(self.seed * 100 + number),),
                name=f"writer-{number}",
                daemon=True,
            )
            self._threads.append(thread)
            thread.start()

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=30)

    @property
    def changes(self) -> int:
        """Writes the table acknowledged (puts and deletes, seed excluded)."""
        with self._counts_lock:
            return sum(self.counts[kind] for kind in self.counts if not kind.startswith(("lost_", "error")))

    # writing -------------------------------------------------------------------------------------------------
    def _count(self, kind: str) -> None:
        with self._counts_lock:
            self.counts[kind] += 1

    def _write_loop(self, rng: random.Random) -> None:
        interval = self.options.writers / self.options.rate
        while not self._stop.is_set():
            began = time.monotonic()
            try:
                self._one(rng)
            except ClientError as error:
                code = error.response.get("Error", {}).get("Code", "")
                self._count("lost_race" if code == "ConditionalCheckFailedException" else "error")
                if code != "ConditionalCheckFailedException":
                    logger.warning("workload write failed: %s", error)
            except Exception as error:  # the workload must go on; the report shows the count
                self._count("error")
                logger.warning("workload write failed: %s: %s", type(error).__name__, error)
            self._stop.wait(max(0.0, interval * rng.uniform(0.5, 1.5) - (time.monotonic() - began)))

    def _one(self, rng: random.Random) -> None:
        now = time.monotonic() - self._started
        with self.state.lock:
            due_fix = next(
                (key for key, p in self.state.poisoned.items() if self._fixable(key, p, now)), None
            )
            if due_fix is not None:
                self.state.poisoned[due_fix].fix_at = now + 1.0  # one writer at a time; retried if it fails
            poison_now = due_fix is None and bool(self.state.poison_due) and self.state.poison_due[0] <= now
            if poison_now:
                self.state.poison_due.pop(0)
        if due_fix is not None:
            self._fix(due_fix, rng)
        elif poison_now:
            self._poison(rng, now)
        elif rng.random() < self.options.insert_share:
            self._insert(rng)
        else:
            self._change(rng, self._pick(rng))

    def _fixable(self, key: str, poisoned: _Poisoned, now: float) -> bool:
        if poisoned.fix_at > now:
            return False
        return self.dead_lettered is None or now >= poisoned.latest or self.dead_lettered(key)

    def _pick(self, rng: random.Random) -> str:
        with self.state.lock:
            if self.state.hot and rng.random() < self.options.hot_share:
                return rng.choice(self.state.hot)
            return rng.choice(self.state.keys)

    def _insert(self, rng: random.Random) -> None:
        with self.state.lock:
            key = f"S{self.state.next_key:07d}"
            self.state.next_key += 1
        self._put(make_order(rng, key), None)
        with self.state.lock:
            self.state.keys.append(key)
        self._count("insert")

    def _change(self, rng: random.Random, key: str) -> None:
        from devservers.workload import change_order

        try:
            kind = change_order(self.client, self.table, rng, key)
        except TypeError:  # a poison version (string total) the generic change cannot update
            self._count("lost_poison_skip")
            return
        self._count(kind)

    def _poison(self, rng: random.Random, now: float) -> None:
        key = self._pick(rng)
        current = self._get(key)
        flavour = rng.choice(POISON_FLAVOURS)
        order = current or make_order(rng, key)
        version = order["version"] if current else None
        if flavour == "bad_date":
            order["created_at"] = "not-a-date"
        else:
            order["total"] = "12.x"
        order["version"] = (version + 1) if version is not None else Decimal(1)
        self._put(order, version)
        with self.state.lock:
            low, high = self.options.poison_fix_after_s
            self.state.poisoned[key] = _Poisoned(
                now + rng.uniform(low, high), flavour, now + self.options.poison_fix_latest_s
            )
            self.state.ever_poisoned.add(key)
        self._count(f"poison_{flavour}")
        logger.info("poison version %s of %s (%s)", order["version"], key, flavour)

    def _fix(self, key: str, rng: random.Random) -> bool:
        """Overwrite a poison version with a valid one; True when the item is projectable now."""
        current = self._get(key)
        if current is None or not is_poison(current):
            with self.state.lock:
                self.state.poisoned.pop(key, None)
            return True
        valid = make_order(rng, key)
        fixed = {**current, "created_at": valid["created_at"], "total": valid["total"]}
        fixed["version"] = current["version"] + 1
        self._put(fixed, current["version"])
        with self.state.lock:
            self.state.poisoned.pop(key, None)
        self._count("poison_fixed")
        return True

    def fix_poison(self) -> int:
        """After the writers stopped: make every item ever poisoned projectable again; how many were fixed."""
        rng = random.Random(self.seed + 2)
        fixed = 0
        with self.state.lock:
            keys = sorted(self.state.ever_poisoned)
        for key in keys:
            current = self._get(key)
            if current is not None and is_poison(current):
                self._fix(key, rng)
                fixed += 1
        return fixed

    def _get(self, key: str) -> dict[str, Any] | None:
        item = self.client.get_item(
            TableName=self.table, Key={"order_id": {"S": key}}, ConsistentRead=True
        ).get("Item")
        return {name: _deserializer.deserialize(value) for name, value in item.items()} if item else None

    def _put(self, order: dict[str, Any], expected_version: Decimal | None) -> None:
        item = {name: _serializer.serialize(value) for name, value in order.items()}
        if expected_version is None:
            self.client.put_item(
                TableName=self.table, Item=item, ConditionExpression="attribute_not_exists(order_id)"
            )
        else:
            self.client.put_item(
                TableName=self.table,
                Item=item,
                ConditionExpression="#v = :v",
                ExpressionAttributeNames={"#v": "version"},
                ExpressionAttributeValues={":v": _serializer.serialize(expected_version)},
            )


def is_poison(order: dict[str, Any]) -> bool:
    """True when no projection can take this item as it is."""
    if not isinstance(order.get("total"), Decimal):
        return True
    try:
        datetime.strptime(str(order.get("created_at")), "%Y-%m-%dT%H:%M:%SZ")
    except ValueError:
        return True
    return False
