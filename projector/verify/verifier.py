"""``projector verify``: compare every projection with the source table, report stable drift, repair it.

The stream may still be flowing while verify runs, so a disagreement is only a candidate. Drift is
reported only for what is stable (the rule, also in docs/backfill.md):

* an item is drifted when it disagrees in the full pass and again when re-read ``settle`` seconds later
  (source item by a consistent read, document by a realtime get) *and* the source item is the same in
  both reads; a source item that changed in between is counted as ``unsettled``, not as drift;
* a group is drifted when its row differs from the recomputation in the full pass and again after
  ``settle`` seconds (a second scan recomputes just the candidate groups, their rows are re-read) *by
  the same amount*; live changes move both sides, a corrupted or lost update keeps the difference.

Drift that comes from the source going back in time (a restored table: stored versions newer than the
items') is counted per projection as ``backwards`` and named in the report (``verify.restore``): no
repair of single items cures it, a rebuild does.

``--repair`` rewrites the drifted documents with versioned writes (see ``verify.opensearch``) and
rebuilds each drifted aggregate projection into a new generation (exact, whatever the damage) with the
``rebuild`` it is given (the backfill's, wired by the CLI and the backfill Lambda), then verifies again.

Each projection is checked by the check class its kind names (``projector.stores.kinds``), through
the interface in ``verify.checks``; this module knows no kind.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from projector.source.items import Source, decoded
from projector.stores.kinds import check_class
from projector.verify.types import VerifyReport

if TYPE_CHECKING:
    from projector.runtime import Runtime
    from projector.source.scanner import Page
    from projector.verify.checks import ProjectionCheck, Rebuild

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class VerifyOptions:
    projections: tuple[str, ...] = ()
    segments: int = 4
    settle_s: float = 5.0
    repair: bool = False


class Verifier:
    """One verify (and repair) run over the selected projections."""

    def __init__(self, runtime: Runtime, options: VerifyOptions, rebuild: Rebuild | None = None) -> None:
        self.runtime = runtime
        self.options = options
        self.rebuild = rebuild  # repairs an aggregate projection; None: such drift is reported, not repaired
        registry = runtime.registry
        names = options.projections
        self.projections = [registry.get(name) for name in names] if names else list(registry.all)
        self.stop = threading.Event()
        self._checks: dict[str, ProjectionCheck] = {}  # the checks of the last verify, for repair

    def run(self) -> VerifyReport:
        report = self.verify()
        if self.options.repair and report.drift:
            self.repair(report)
            report.after_repair = self.verify()
        return report

    # one verify -------------------------------------------------------------------------------------------
    def verify(self) -> VerifyReport:
        started = time.monotonic()
        source = Source.of(self.runtime.dynamodb, self.runtime.settings.source_table, self.options.segments)
        checks: list[ProjectionCheck] = [check_class(p)(self.runtime, p) for p in self.projections]

        def on_page(page: Page) -> None:
            items = decoded(page)
            for check in checks:
                check.add(items, page.read_at)

        report = VerifyReport(checked=source.scan(on_page))
        by_class: dict[type[ProjectionCheck], list[ProjectionCheck]] = {}
        for check in checks:
            by_class.setdefault(type(check), []).append(check)
        candidates = sum(kind.first_passes(group) for kind, group in by_class.items())
        if candidates:
            logger.info("verify: %d candidate(s); re-checking in %.1f s", candidates, self.options.settle_s)
            self.stop.wait(self.options.settle_s)
        for check in checks:
            verdict = check.settle(source, report.checked)
            verdict.backwards = check.backwards(verdict, source)
            report.projections[check.projection.name] = verdict
        self._checks = {check.projection.name: check for check in checks}
        report.projections = {p.name: report.projections[p.name] for p in self.projections}
        report.seconds = time.monotonic() - started
        return report

    # repair -----------------------------------------------------------------------------------------------
    def repair(self, report: VerifyReport) -> None:
        for projection in self.projections:
            verdict = report.projections[projection.name]
            if verdict.drift:
                verdict.repaired, verdict.note = self._checks[projection.name].repair(
                    verdict, self.rebuild, self.options.segments
                )
