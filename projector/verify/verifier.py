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
rebuilds each drifted aggregate projection into a new generation (exact, whatever the damage), then
verifies again.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from projector.backfill.rebuild import Rebuilds
from projector.backfill.run import FINISHED, Backfill, BackfillOptions
from projector.backfill.scanner import SourceTable
from projector.projection.base import AggregateProjection, DocumentProjection
from projector.records import DecodeError, decode_image
from projector.verify.aggregates import GroupCheck, delta, read_group_rows
from projector.verify.opensearch import KEPT, Candidate, DocumentCheck
from projector.verify.restore import aggregate_backwards, search_backwards
from projector.verify.source import Source
from projector.verify.types import Finding, Verdict, VerifyReport

if TYPE_CHECKING:
    from projector.backfill.scanner import Page
    from projector.runtime import Runtime

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class VerifyOptions:
    projections: tuple[str, ...] = ()
    segments: int = 4
    settle_s: float = 5.0
    repair: bool = False


class Verifier:
    """One verify (and repair) run over the selected projections."""

    def __init__(self, runtime: Runtime, options: VerifyOptions) -> None:
        self.runtime = runtime
        self.options = options
        registry = runtime.registry
        names = options.projections
        self.projections = [registry.get(name) for name in names] if names else list(registry.all)
        self.stop = threading.Event()
        self._stable: dict[str, list[Any]] = {}
        self._streams: dict[str, Any] = {}  # events hook: the stream checks of the last verify

    def run(self) -> VerifyReport:
        report = self.verify()
        if self.options.repair and report.drift:
            self.repair(report)
            report.after_repair = self.verify()
        return report

    # one verify -------------------------------------------------------------------------------------------
    def verify(self) -> VerifyReport:
        started = time.monotonic()
        source = Source(
            self.runtime.dynamodb,
            SourceTable.describe(self.runtime.dynamodb, self.runtime.settings.source_table),
            self.options.segments,
        )
        from projector.events.projection import is_event_stream  # events hook: streams vs. their folds
        from projector.events.verify import StreamCheck

        streams = [StreamCheck(self.runtime, p) for p in self.projections if is_event_stream(p)]
        documents = [
            DocumentCheck(self.runtime, p)
            for p in self.projections
            if isinstance(p, DocumentProjection) and not is_event_stream(p)
        ]
        groups = [GroupCheck(self.runtime, p) for p in self.projections if isinstance(p, AggregateProjection)]
        first: dict[str, list[Candidate]] = {check.projection.name: [] for check in documents}
        lock = threading.Lock()

        def on_page(page: Page) -> None:
            items = _decode(page)
            for check in documents:
                found = check.compare(items, page.read_at)
                with lock:
                    first[check.projection.name].extend(found)
            for group_check in groups:
                group_check.add(items)
            for stream_check in streams:
                stream_check.add(items)

        report = VerifyReport(checked=source.scan(on_page))
        stream_first = {check.projection.name: check.candidates() for check in streams}
        for check in documents:
            first[check.projection.name].extend(check.extras())
        rows = read_group_rows(self.runtime, groups)
        group_first = {
            check.projection.name: check.differences(rows[check.projection.name]) for check in groups
        }
        if any(first.values()) or any(group_first.values()) or any(stream_first.values()):
            logger.info(
                "verify: %d candidate(s); re-checking in %.1f s",
                sum(map(len, first.values())) + sum(map(len, group_first.values())),
                self.options.settle_s,
            )
            self.stop.wait(self.options.settle_s)
        for check in documents:
            report.projections[check.projection.name] = self._settle_documents(
                check, source, first[check.projection.name], report.checked
            )
        for stream_check in streams:
            name = stream_check.projection.name
            report.projections[name], self._stable[name] = stream_check.settle(stream_first[name])
            self._streams[name] = stream_check
        for group_check in groups:
            name = group_check.projection.name
            report.projections[name] = self._settle_groups(
                group_check, source, group_first[name], len(group_check.expected.keys() | rows[name].keys())
            )
        for check in documents:
            report.projections[check.projection.name].backwards = search_backwards(
                report.projections[check.projection.name]
            )
        for group_check in groups:
            verdict = report.projections[group_check.projection.name]
            if verdict.drift:  # reads every contribution record: only when something is wrong
                verdict.backwards = aggregate_backwards(
                    self.runtime, group_check.projection, group_check.generation, source
                )
        report.projections = {p.name: report.projections[p.name] for p in self.projections}
        report.seconds = time.monotonic() - started
        return report

    def _settle_documents(
        self, check: DocumentCheck, source: Source, first: list[Candidate], checked: int
    ) -> Verdict:
        verdict = Verdict(check.projection.name, "search", checked=checked)
        stable: list[Candidate] = []
        if first:
            again = check.recheck(source, [candidate.id for candidate in first])
            for before in first:
                after = again.get(before.id)
                if after is None:
                    continue  # caught up meanwhile: stream lag, not drift
                if after.item != before.item:
                    verdict.unsettled += 1
                    continue
                if after.kind == KEPT:
                    verdict.kept += 1
                    continue
                stable.append(after)
                verdict.findings.append(Finding(after.kind, after.id, check.finding_detail(after)))
        self._stable[check.projection.name] = stable
        return verdict

    def _settle_groups(
        self, check: GroupCheck, source: Source, first: dict[str, Any], checked: int
    ) -> Verdict:
        verdict = Verdict(check.projection.name, "aggregate", checked=checked)
        if not first:
            return verdict
        candidates = set(first)
        check.expected = {}
        source.scan(lambda page: check.add(_decode(page), only=candidates))
        again = check.differences(check.rows_of(candidates), candidates)
        for group, (kind, expected, actual) in first.items():
            if group not in again:
                continue
            _, expected_now, actual_now = again[group]
            if delta(expected, actual) != delta(expected_now, actual_now):
                verdict.unsettled += 1
                continue
            verdict.findings.append(
                Finding(
                    kind, group, {"expected": check.render(expected_now), "actual": check.render(actual_now)}
                )
            )
        return verdict

    # repair ---------------------------------------------------------------------------------------------
    def repair(self, report: VerifyReport) -> None:
        for projection in self.projections:
            verdict = report.projections[projection.name]
            if not verdict.drift:
                continue
            if projection.name in self._streams:  # events hook
                stream_check = self._streams[projection.name]
                verdict.repaired = sum(stream_check.repair(c) for c in self._stable[projection.name])
            elif isinstance(projection, DocumentProjection):
                check = DocumentCheck(self.runtime, projection)
                verdict.repaired = sum(check.repair(candidate) for candidate in self._stable[projection.name])
            else:
                verdict.repaired, verdict.note = self._rebuild(projection, verdict.drift)

    def _rebuild(self, projection: Any, drift: int) -> tuple[int, str]:
        """Aggregates are repaired exactly by a rebuild of that projection into a new generation."""
        if Rebuilds(self.runtime).layout(projection).rebuilding:
            return 0, "a rebuild is in progress: not repaired (its swap replaces the drifted generation)"
        options = BackfillOptions(
            segments=self.options.segments,
            rebuild=True,
            projections=(projection.name,),
            label=f"repair-{projection.name}",
        )
        backfill = Backfill(self.runtime, options)
        source = backfill.source()
        result = backfill.run(source, backfill.prepare(source))
        if result.status != FINISHED:
            return (
                0,
                f"rebuild {result.status}: finish it with "
                f"`projector backfill --rebuild --projection {projection.name}`",
            )
        target = (result.rebuild or {}).get(projection.name, {}).get("reading")
        return drift, f"rebuilt into {target}"


def _decode(page: Page) -> list[dict[str, Any]]:
    items = []
    for raw in page.items:
        try:
            items.append(decode_image(raw))
        except DecodeError:
            continue
    return items
