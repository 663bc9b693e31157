"""The chaos phase: workload, faults, runner kills and restarts, a shadow runner replaying from an older
checkpoint, backfills, late redrives and one OpenSearch restart, each at its moment, for ``chaos_s``."""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from soak.profile import Profile
from soak.runners import RunnerProcess
from soak.tasks import BackfillRun, CheckpointSnapshots, redrive, restart_opensearch

logger = logging.getLogger(__name__)


@dataclass(slots=True)
class Happenings:
    """What the chaos phase did besides the faults (the lanes count those)."""

    restarts: list[dict[str, Any]] = field(default_factory=list)
    redrives: list[dict[str, Any]] = field(default_factory=list)
    shadows: list[dict[str, Any]] = field(default_factory=list)
    runner_crashes: list[int] = field(default_factory=list)


class Background:
    """Side jobs in threads; their results land in ``Happenings``; ``join`` waits for all of them."""

    def __init__(self) -> None:
        self._threads: list[threading.Thread] = []

    def run(self, name: str, job: Callable[[], None]) -> None:
        thread = threading.Thread(target=job, name=name, daemon=True)
        self._threads.append(thread)
        thread.start()

    def busy(self, name: str) -> bool:
        return any(thread.name == name and thread.is_alive() for thread in self._threads)

    def join(self, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))


class Timeline:
    """Runs the chaos phase; ``run`` returns when ``profile.chaos_s`` has passed (faults still on)."""

    def __init__(
        self,
        profile: Profile,
        rng: random.Random,
        main: RunnerProcess,
        shadow: RunnerProcess,
        snapshots: CheckpointSnapshots,
        make_backfill: Callable[[int], BackfillRun],
        shadow_env: Callable[[int], tuple[dict[str, str], str]],
        proxied_env: dict[str, str],
        handler: str,
        log_dir: Any,
        restart_opensearch_enabled: bool,
    ) -> None:
        self.profile = profile
        self.rng = rng
        self.main = main
        self.shadow = shadow
        self.snapshots = snapshots
        self.make_backfill = make_backfill
        self.shadow_env = shadow_env
        self.proxied_env = proxied_env
        self.handler = handler
        self.log_dir = log_dir
        self.restart_enabled = restart_opensearch_enabled
        self.happened = Happenings()
        self.backfills: list[BackfillRun] = []
        self.background = Background()
        #: a late redrive under faults is stopped after this long (what it redrove stays redriven)
        self.redrive_timeout_s = max(20.0, min(120.0, profile.chaos_s / 4))
        self._shadow_run: tuple[list[str], dict[str, str]] | None = None

    def runner_args(self) -> list[str]:
        """A fresh random configuration for each incarnation of the main runner."""
        rng, profile = self.rng, self.profile
        args = [
            "--batch-size",
            str(rng.choice(profile.batch_sizes)),
            "--window",
            str(rng.choice((0, 0, 0.3))),
            "--max-retries",
            str(rng.choice(profile.max_retries)),
            "--timeout",
            str(rng.choice(profile.timeouts_s)),
            "--discover-interval",
            "2",
            "--handler",
            self.handler,
        ]
        if rng.random() < 0.4:
            args.append("--bisect")
        return args

    def run(self, stop: threading.Event) -> None:
        profile, rng = self.profile, self.rng
        began = time.monotonic()
        at = {  # one-off events: seconds into the chaos -> what
            **{profile.chaos_s * f: ("backfill", n) for n, f in enumerate(profile.backfill_at)},
            **{profile.chaos_s * f + 0.01: ("shadow", n) for n, f in enumerate(profile.shadow_at)},
            **{profile.chaos_s * f + 0.02: ("redrive", n) for n, f in enumerate(profile.redrive_at)},
        }
        if profile.opensearch_restart_at is not None and self.restart_enabled:
            at[profile.chaos_s * profile.opensearch_restart_at + 0.03] = ("restart", 0)
        elif profile.opensearch_restart_at is not None:
            self.happened.restarts.append({"restarted": False, "note": "disabled by --no-opensearch-restart"})
        events = sorted(at.items())
        self.main.start(self.runner_args())
        next_kill = rng.uniform(*profile.kill_every_s)
        restart_at: float | None = None
        next_snapshot = profile.snapshot_every_s
        shadow_until: float | None = None
        next_revive = 0.0
        while not stop.is_set():
            now = time.monotonic() - began
            if now >= profile.chaos_s:
                break
            while events and events[0][0] <= now:
                _, (kind, number) = events.pop(0)
                shadow_until = self._event(kind, number, now) or shadow_until
            if shadow_until is not None and now >= shadow_until:
                self._stop_shadow()
                shadow_until = None
            elif shadow_until is not None and now >= next_revive:
                self._revive_shadow()
                next_revive = now + 1.0
            if now >= next_snapshot:
                self.snapshots.take()
                next_snapshot = now + profile.snapshot_every_s
            if restart_at is None and now >= next_kill:
                if self.main.kill():
                    restart_at = now + rng.uniform(*profile.restart_after_s)
                next_kill = now + rng.uniform(*profile.kill_every_s)
            if restart_at is not None and now >= restart_at:
                self.main.start(self.runner_args())
                restart_at = None
            elif restart_at is None and not self.main.alive:  # it ended by itself: a crash, restart soon
                code = self.main.stop()
                self.happened.runner_crashes.append(code if code is not None else -1)
                logger.warning("runner main ended by itself (exit %s): restarting", code)
                restart_at = now + 1.0
            stop.wait(0.1)
        if shadow_until is not None:
            self._stop_shadow()
        if restart_at is not None:
            self.main.start(self.runner_args())

    def _event(self, kind: str, number: int, now: float) -> float | None:
        if kind == "backfill":
            run = self.make_backfill(number)
            self.backfills.append(run)
            run.start()
        elif kind == "shadow" and not self.shadow.alive:
            env, origin = self.shadow_env(number)
            self._shadow_run = (self._shadow_args(), env)
            self.shadow.start(*self._shadow_run)
            self.happened.shadows.append({"at_s": round(now, 1), "from": origin})
            return now + self.profile.shadow_for_s
        elif kind == "redrive" and not self.background.busy("redrive"):
            self.background.run(
                "redrive",
                lambda: self.happened.redrives.append(
                    {
                        "at_s": round(now, 1),
                        **redrive(self.proxied_env, self.log_dir / "commands.log", self.redrive_timeout_s),
                    }
                ),
            )
        elif kind == "restart":

            def restart() -> None:
                result = restart_opensearch()
                self.happened.restarts.append({"at_s": round(now, 1), **result})
                logger.info("opensearch restart: %s", result)

            self.background.run("restart", restart)
        return None

    def _shadow_args(self) -> list[str]:
        size = str(self.rng.choice(self.profile.batch_sizes))
        return ["--batch-size", size, "--max-retries", "3", "--timeout", "20", "--discover-interval", "2"]

    def _revive_shadow(self) -> None:
        """A shadow runner that died by itself within its time (a crash) starts again where it was."""
        if self._shadow_run is not None and not self.shadow.alive:
            code = self.shadow.stop()
            self.happened.runner_crashes.append(code if code is not None else -1)
            self.shadow.start(*self._shadow_run)

    def _stop_shadow(self) -> None:
        self._shadow_run = None
        if self.rng.random() < 0.5:
            self.shadow.kill()
        else:
            self.shadow.stop(grace_s=20)
