"""Network faults over time: Toxiproxy toxics and cut links, and the HTTP fault layer's 429/503 answers.

Two lanes run side by side, one per link (runner -> OpenSearch, runner -> DynamoDB). Each lane walks
through its fault kinds in a shuffled cycle (so every kind comes up early, then again at random), holds
each fault for a random while, lifts it, and rests before the next. Only the soak's own proxies are
touched; other users of the Toxiproxy server are left alone.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from devservers.toxiproxy import ToxiproxyClient, ToxiproxyError
from soak.http_faults import MODES as HTTP_MODES
from soak.http_faults import HttpFaultLayer

logger = logging.getLogger(__name__)

TCP_KINDS = ("latency", "reset_peer", "cut", "timeout", "withheld", "limit_data")
KINDS = (*TCP_KINDS, *HTTP_MODES)
TOXIC_NAME = "soak-fault"


@dataclass(frozen=True, slots=True)
class LaneTiming:
    """How long a fault lasts and how long a lane rests between two faults (uniform ranges, seconds)."""

    hold: tuple[float, float]
    rest: tuple[float, float]


@dataclass(slots=True)
class FaultLog:
    """Every activation, per ``link:kind`` (thread-safe), and what is active right now."""

    counts: Counter[str] = field(default_factory=Counter)
    active: dict[str, str] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def started(self, link: str, kind: str) -> None:
        with self.lock:
            self.counts[f"{link}:{kind}"] += 1
            self.active[link] = kind

    def ended(self, link: str) -> None:
        with self.lock:
            self.active.pop(link, None)


class TcpFaults:
    """Faults of one Toxiproxy proxy: one toxic (or a disabled proxy) at a time."""

    def __init__(self, client: ToxiproxyClient, proxy: str, rng: random.Random) -> None:
        self.client = client
        self.proxy = proxy
        self.rng = rng

    def apply(self, kind: str) -> None:
        rng = self.rng
        if kind == "cut":
            self.client.set_enabled(self.proxy, False)
        elif kind == "latency":
            self._toxic(
                "latency",
                {"latency": rng.randint(100, 900), "jitter": rng.randint(0, 300)},
                rng.choice(("upstream", "downstream")),
            )
        elif kind == "reset_peer":
            self._toxic(
                "reset_peer",
                {"timeout": rng.randint(0, 400)},
                "upstream",
                toxicity=rng.choice((0.3, 0.6, 1.0)),
            )
        elif kind == "timeout":  # the request never reaches the server; the connection closes later
            self._toxic("timeout", {"timeout": rng.randint(300, 2500)}, "upstream")
        elif kind == "withheld":  # the request reaches the server, its answer never comes back
            self._toxic("timeout", {"timeout": rng.randint(200, 2000)}, "downstream")
        elif kind == "limit_data":  # the answer is cut after a few bytes: applied, not acknowledged
            self._toxic("limit_data", {"bytes": rng.randint(40, 1500)}, "downstream")
        else:
            raise ValueError(f"unknown TCP fault {kind!r}")

    def lift(self) -> None:
        """Remove the soak's toxic and re-enable the proxy, whatever was on."""
        proxy = self.client.proxies().get(self.proxy) or {}
        if not proxy.get("enabled", True):
            self.client.set_enabled(self.proxy, True)
        for toxic in proxy.get("toxics") or []:
            if str(toxic.get("name", "")).startswith(TOXIC_NAME):
                self.client.remove_toxic(self.proxy, toxic["name"])

    def _toxic(self, toxic_type: str, attributes: dict[str, int], stream: str, toxicity: float = 1.0) -> None:
        self.client.add_toxic(
            self.proxy, toxic_type, attributes, name=TOXIC_NAME, stream=stream, toxicity=toxicity
        )


class Lane:
    """One link's fault loop, in its own thread, until ``stop``."""

    def __init__(
        self,
        link: str,
        kinds: list[str],
        apply: Callable[[str], None],
        lift: Callable[[], None],
        timing: LaneTiming,
        log: FaultLog,
        rng: random.Random,
    ) -> None:
        self.link = link
        self.kinds = kinds
        self._apply = apply
        self._lift = lift
        self.timing = timing
        self.log = log
        self.rng = rng
        self.stopped = threading.Event()
        self.errors = 0
        #: For faults that can tell: whether the fault has hit a request since it was switched on.
        self.took: Callable[[str], bool] | None = None
        self._thread = threading.Thread(target=self._loop, name=f"faults-{link}", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self.stopped.set()
        self._thread.join(timeout=30)
        self._safe_lift()

    def _loop(self) -> None:
        cycle: list[str] = []
        if self.stopped.wait(self.rng.uniform(*self.timing.rest)):
            return
        while not self.stopped.is_set():
            if not cycle:
                cycle = list(self.kinds)
                self.rng.shuffle(cycle)
            kind = cycle.pop()
            self.inject(kind, self.stopped)
            self.stopped.wait(self.rng.uniform(*self.timing.rest))

    def inject(self, kind: str, stop: threading.Event) -> None:
        """One fault: on, held a random while (an HTTP fault until it hit a request, 8 s at most), off."""
        try:
            self._apply(kind)
        except (ToxiproxyError, OSError) as error:
            self.errors += 1
            logger.warning("fault %s:%s not applied: %s", self.link, kind, error)
        else:
            self.log.started(self.link, kind)
            logger.info("fault on  %s: %s", self.link, kind)
            stop.wait(self.rng.uniform(*self.timing.hold))
            if self.took is not None:
                until = time.monotonic() + 8.0
                while not self.took(kind) and time.monotonic() < until and not stop.wait(0.2):
                    pass
        self._safe_lift()
        self.log.ended(self.link)
        logger.info("fault off %s", self.link)

    def _safe_lift(self) -> None:
        for attempt in range(5):
            try:
                self._lift()
                return
            except (ToxiproxyError, OSError) as error:
                logger.warning("lifting faults of %s failed (attempt %d): %s", self.link, attempt + 1, error)
                time.sleep(0.5)


class FaultInjector:
    """Both lanes: OpenSearch (TCP kinds + HTTP 429/503) and DynamoDB (TCP kinds)."""

    def __init__(
        self,
        client: ToxiproxyClient,
        opensearch_proxy: str,
        dynamodb_proxy: str,
        http_layer: HttpFaultLayer,
        timing: LaneTiming,
        rng: random.Random,
        disabled: frozenset[str] = frozenset(),
    ) -> None:
        """``disabled``: kinds left out, as ``link:kind`` or a bare ``kind`` (both links)."""
        self.log = FaultLog()
        self.http_layer = http_layer
        os_tcp = TcpFaults(client, opensearch_proxy, random.Random(rng.random()))
        ddb_tcp = TcpFaults(client, dynamodb_proxy, random.Random(rng.random()))
        http_rng = random.Random(rng.random())

        hits_before: dict[str, int] = {}

        def apply_opensearch(kind: str) -> None:
            if kind in HTTP_MODES:
                hits_before[kind] = http_layer.counts.get(kind, 0)
                http_layer.set_mode(kind, http_rng.choice((0.3, 0.5, 0.8)))
            else:
                os_tcp.apply(kind)

        def lift_opensearch() -> None:
            http_layer.clear()
            os_tcp.lift()

        def enabled(link: str, kinds: list[str]) -> list[str]:
            return [kind for kind in kinds if kind not in disabled and f"{link}:{kind}" not in disabled]

        self.lanes = [
            Lane(
                "opensearch",
                enabled("opensearch", [*TCP_KINDS, *HTTP_MODES]),
                apply_opensearch,
                lift_opensearch,
                timing,
                self.log,
                random.Random(rng.random()),
            ),
            Lane(
                "dynamodb",
                enabled("dynamodb", list(TCP_KINDS)),
                ddb_tcp.apply,
                ddb_tcp.lift,
                timing,
                self.log,
                random.Random(rng.random()),
            ),
        ]
        self.lanes = [lane for lane in self.lanes if lane.kinds]
        for lane in self.lanes:
            if lane.link == "opensearch":
                lane.took = lambda kind: (
                    kind not in HTTP_MODES or http_layer.counts.get(kind, 0) > hits_before.get(kind, 0)
                )

    def start(self) -> None:
        for lane in self.lanes:
            lane.start()

    def stop(self) -> None:
        """Stop both lanes and lift every fault (proxies enabled, no toxics, HTTP faults off)."""
        for lane in self.lanes:
            lane.stop()

    def counts(self) -> dict[str, int]:
        """Activations per ``link:kind``; for the HTTP kinds, the requests actually answered with a fault."""
        with self.log.lock:
            counts = dict(self.log.counts)
        for mode in HTTP_MODES:
            if f"opensearch:{mode}" in self.expected_kinds():
                counts[f"opensearch:{mode}"] = self.http_layer.counts.get(mode, 0)
        return dict(sorted(counts.items()))

    def cover(self) -> list[str]:
        """After the lanes stopped: inject, once, every kind that never hit (a short run); which ones."""
        counts = self.counts()
        missing = []
        for lane in self.lanes:
            for kind in lane.kinds:
                if counts.get(f"{lane.link}:{kind}", 0) < 1:
                    missing.append(f"{lane.link}:{kind}")
                    lane.inject(kind, threading.Event())
        return missing

    def activations(self) -> dict[str, int]:
        """How many times each ``link:kind`` was switched on."""
        with self.log.lock:
            return dict(sorted(self.log.counts.items()))

    def expected_kinds(self) -> list[str]:
        return sorted(f"{lane.link}:{kind}" for lane in self.lanes for kind in lane.kinds)
