"""One soak from start to end: prepare, chaos, quiesce, check, report, clean up.

* prepare: the local servers (OpenSearch and moto are reused when they answer; Toxiproxy is started if
  needed), a unique index prefix and tables (``projector setup --with-source-table``), the seed, two
  Toxiproxy proxies (OpenSearch behind the HTTP fault layer, and DynamoDB);
* chaos: see ``soak.timeline``;
* quiesce: faults off, workload stopped and poison versions fixed, shadow runner stopped, backfills
  finished, the main runner stopped; a drain runner (no faults, direct endpoints) reads to the end of the
  stream; ``projector dead-letters redrive``;
* check: ``projector verify --json`` must find zero drift in every projection;
* cleanup: processes started here, the proxies, indexes, templates and tables (unless ``--keep``).
"""

from __future__ import annotations

import logging
import random
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from soak.env import MOTO, SoakNames, aws_client, cleanup, engine_tree, free_port, projector
from soak.faults import FaultInjector
from soak.http_faults import HttpFaultLayer
from soak.profile import Profile
from soak.report import SoakReport
from soak.runners import RunnerProcess
from soak.tasks import (
    BackfillRun,
    CheckpointSnapshots,
    PoisonLetters,
    dead_letters,
    ensure_opensearch,
    read_replays,
    redrive,
)
from soak.timeline import Timeline
from soak.workload import Workload

logger = logging.getLogger(__name__)

REPLAY_HANDLER = "soak.replay:handler"


class SoakError(RuntimeError):
    """The soak could not run (a server or a setup step failed): not a verdict on projector."""


@dataclass(frozen=True, slots=True)
class SoakOptions:
    minutes: float = 10.0
    seed: int = 7
    quick: bool = False
    keep: bool = False
    restart_opensearch: bool = True
    without: tuple[str, ...] = ()
    work_base: Path = Path("/tmp")


class Soak:
    def __init__(self, options: SoakOptions) -> None:
        self.options = options
        self.profile = Profile.quick() if options.quick else Profile.full(options.minutes)
        self.rng = random.Random(options.seed)
        self.names = SoakNames.fresh(options.work_base)
        self.report = SoakReport(
            mode="quick" if options.quick else "full",
            seed=options.seed,
            names={
                "index_prefix": self.names.index_prefix,
                "source_table": self.names.source_table,
                "aggregates_table": self.names.aggregates_table,
                "work_dir": str(self.names.work_dir),
            },
        )
        self.stop = threading.Event()
        self._proxies: list[str] = []
        self._runners: list[RunnerProcess] = []
        self._timeline: Timeline | None = None
        self._http: HttpFaultLayer | None = None
        self._faults: FaultInjector | None = None
        self._workload: Workload | None = None
        self._toxi: Any = None

    # the whole run -----------------------------------------------------------------------------------------
    def run(self) -> SoakReport:
        started = time.monotonic()
        self.report.engine = engine_tree()
        try:
            self._prepare()
            self._chaos()
            self._quiesce()
            self._check()
        except BaseException as error:
            self.report.error = f"{type(error).__name__}: {error}"
            logger.error("soak aborted: %s", self.report.error)
            raise
        finally:
            self.report.seconds = round(time.monotonic() - started, 1)
            self.report.engine_after = engine_tree()
            self._teardown()
        return self.report

    def _log(self, name: str) -> Path:
        return self.names.log_dir / name

    # prepare -----------------------------------------------------------------------------------------------
    def _prepare(self) -> None:
        from devservers import registry
        from devservers.toxiproxy import start_toxiproxy

        names = self.names
        for folder in (names.log_dir, names.state_dir, names.dead_letters_dir):
            folder.mkdir(parents=True, exist_ok=True)
        registry.get("opensearch").ensure()
        registry.get("moto").ensure()
        self._toxi = start_toxiproxy()
        self.direct = names.environment()
        result = projector(
            ["setup", "--with-source-table", "--json"], self.direct, 180.0, self._log("commands.log")
        )
        if result.code != 0:
            raise SoakError(f"projector setup failed: {result.stderr[-500:]}")
        self._workload = Workload(
            aws_client("dynamodb", MOTO),
            names.source_table,
            self.profile.workload,
            self.options.seed,
            self.profile.chaos_s,
            PoisonLetters(names.dead_letters_dir),
        )
        self.report.seeded = self._workload.seed_table()
        self._http = HttpFaultLayer(seed=self.options.seed).start()
        os_listen, ddb_listen = f"127.0.0.1:{free_port()}", f"127.0.0.1:{free_port()}"
        os_proxy, ddb_proxy = f"soak-{names.token}-opensearch", f"soak-{names.token}-dynamodb"
        self._toxi.create_proxy(os_proxy, os_listen, self._http.address)
        self._proxies.append(os_proxy)
        self._toxi.create_proxy(ddb_proxy, ddb_listen, MOTO.removeprefix("http://"))
        self._proxies.append(ddb_proxy)
        self.replay_log = names.work_dir / "replays.jsonl"
        self.proxied = names.environment(
            f"http://{os_listen}",
            f"http://{ddb_listen}",
            SOAK_SEED=str(self.options.seed),
            SOAK_REPLAY_LOG=str(self.replay_log),
            PROJECTOR_OPENSEARCH_TIMEOUT_S="5",
        )
        self._faults = FaultInjector(
            self._toxi,
            os_proxy,
            ddb_proxy,
            self._http,
            self.profile.lanes,
            random.Random(self.rng.random()),
            frozenset(self.options.without),
        )
        self.report.disabled_faults = sorted(self.options.without)
        logger.info(
            "prepared %s: %d orders seeded; proxies %s (opensearch) %s (dynamodb)",
            names.token,
            self.report.seeded,
            os_listen,
            ddb_listen,
        )

    # chaos -------------------------------------------------------------------------------------------------
    def _chaos(self) -> None:
        assert self._workload is not None and self._faults is not None
        names = self.names
        main = self._runner("main", self.proxied)
        shadow = self._runner("shadow", self.proxied)
        snapshots = CheckpointSnapshots(names.state_dir, names.source_table, names.work_dir / "snapshots")

        def make_backfill(number: int) -> BackfillRun:
            state = names.work_dir / f"backfill-{number}"
            env = {**self.proxied, "PROJECTOR_STATE_DIR": str(state)}
            return BackfillRun(env, self.profile.backfill_segments, self._log(f"backfill-{number}.log"))

        def shadow_env(number: int) -> tuple[dict[str, str], str]:
            state = names.work_dir / f"shadow-{number}"
            taken = len(snapshots.taken)
            pick = (
                None if not taken or self.rng.random() < 0.25 else self.rng.randrange(max(1, taken // 2) or 1)
            )
            origin = snapshots.shadow_state(state, names.source_table, pick)
            return {**self.proxied, "PROJECTOR_STATE_DIR": str(state)}, origin

        self._timeline = Timeline(
            self.profile,
            random.Random(self.rng.random()),
            main,
            shadow,
            snapshots,
            make_backfill,
            shadow_env,
            self.proxied,
            REPLAY_HANDLER,
            names.log_dir,
            self.options.restart_opensearch,
        )
        self._workload.start()
        self._faults.start()
        logger.info("chaos for %.0f s", self.profile.chaos_s)
        self._timeline.run(self.stop)
        for lane in self._faults.lanes:
            lane.stop()
        covered = self._faults.cover()
        if covered:
            self.report.notes.append(f"injected after the chaos phase, not met before: {', '.join(covered)}")

    def _runner(self, name: str, env: dict[str, str]) -> RunnerProcess:
        runner = RunnerProcess(name, env, self.names.log_dir)
        self._runners.append(runner)
        return runner

    # quiesce -----------------------------------------------------------------------------------------------
    def _quiesce(self) -> None:
        assert self._faults is not None and self._workload is not None and self._timeline is not None
        timeline = self._timeline
        self._faults.stop()
        self._workload.stop()
        self.report.poison_fixed_at_end = self._workload.fix_poison()
        for runner in self._runners:
            if runner.name == "shadow":
                runner.stop(grace_s=20)
        timeline.background.join(240.0)
        ensure_opensearch()
        for run in timeline.backfills:
            run.finish(self.profile.drain_timeout_s / 2)
        for runner in self._runners:
            if runner.name == "main":
                runner.stop(grace_s=30)
        drain = self._runner("drain", self.direct)
        drain.start(
            ["--until-idle", "4", "--max-retries", "10", "--batch-size", "100", "--discover-interval", "2"]
        )
        began = time.monotonic()
        code = drain.wait(self.profile.drain_timeout_s)
        if code is None:
            drain.stop(grace_s=20)
            self.report.notes.append(f"drain did not go idle within {self.profile.drain_timeout_s:g} s")
        self.report.drain_s = round(time.monotonic() - began, 1)
        self.report.final_redrive = redrive(self.direct, self._log("commands.log"))

    # check -------------------------------------------------------------------------------------------------
    def _check(self) -> None:
        log = self._log("commands.log")
        self.report.dead_letters_all = dead_letters(self.direct, log, include_redriven=True)
        self.report.dead_letters_left = dead_letters(self.direct, log, include_redriven=False)
        result = projector(["verify", "--json"], self.direct, 600.0, log)
        if not isinstance(result.data, dict):
            raise SoakError(f"projector verify gave no report (exit {result.code}): {result.stderr[-500:]}")
        self.report.verify = result.data
        self.report.verify_exit = result.code

    # teardown ----------------------------------------------------------------------------------------------
    def _teardown(self) -> None:
        timeline = self._timeline
        if self._faults is not None:
            try:
                self._faults.stop()
            except Exception as error:
                self.report.notes.append(f"lifting faults: {error}")
        if self._workload is not None:
            self._workload.stop()
        for runner in self._runners:
            runner.kill()
        if timeline is not None:
            for run in timeline.backfills:
                run.finish(0.0)
            timeline.background.join(240.0)
        self._collect()
        for proxy in self._proxies:
            try:
                self._toxi.delete_proxy(proxy)
            except Exception as error:
                self.report.notes.append(f"deleting proxy {proxy}: {error}")
        if self._http is not None:
            self._http.close()
        try:
            ensure_opensearch()
        except Exception as error:
            self.report.notes.append(f"OpenSearch not running after the soak: {error}")
        if self.options.keep:
            self.report.notes.append(f"kept: prefix {self.names.index_prefix}, tables, {self.names.work_dir}")
        else:
            keep_files = not self.report.ok  # logs and dead letters stay for the investigation
            self.report.notes.extend(cleanup(self.names, keep_files=keep_files))
            if keep_files:
                self.report.notes.append(f"logs kept in {self.names.work_dir}")

    def _collect(self) -> None:
        """Copy every counter into the report (also after an abort)."""
        report, timeline = self.report, self._timeline
        if self._workload is not None:
            report.workload = dict(sorted(self._workload.counts.items()))
            report.changes = self._workload.changes
        if self._faults is not None:
            report.faults = self._faults.counts()
            report.fault_activations = self._faults.activations()
            report.expected_faults = self._faults.expected_kinds()
        if self._http is not None:
            report.http_layer = {
                "forwarded": self._http.forwarded,
                "upstream_errors": self._http.upstream_errors,
            }
        report.runners = {runner.name: runner.stats.to_json() for runner in self._runners}
        if timeline is not None:
            happened = timeline.happened
            report.opensearch_restarts = happened.restarts
            report.redrives = happened.redrives
            report.shadows = happened.shadows
            report.runner_crashes = happened.runner_crashes
            report.backfills = [run.attempts for run in timeline.backfills]
        if hasattr(self, "replay_log"):
            report.replays = read_replays(self.replay_log)
