"""Verify an aggregate projection: every group row of the read generation against a recomputation.

The recomputation sums ``projection.contributions(item)`` over the scanned items, exactly (the aggregates'
one decimal context, ``projector/sinks/aggregates/numbers.py``). The rows are read with one consistent Scan of the aggregates table for all
aggregate projections (rows have no index by generation), so groups that should be zero and groups
that are absent are both found: *missing* (a group with live contributions but no row), *extra* (a row
with non-zero measures that no live item contributes to), *mismatch* (both, different numbers).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from projector.retry import Deadline, retrying
from projector.retry.transient import is_transient
from projector.sinks.aggregates.keys import (
    GROUP_KEY_ATTRIBUTE,
    generation_sk,
    group_of,
    group_pk,
    key,
    projection_of_group_row,
)
from projector.sinks.aggregates.numbers import add, decimal_of, subtract
from projector.sinks.aggregates.reader import render_measure
from projector.source.items import decoded
from projector.verify.checks import ProjectionCheck, Rebuild
from projector.verify.restore import aggregate_backwards
from projector.verify.types import Finding, Verdict

if TYPE_CHECKING:
    from collections.abc import Sequence

    from projector.projection.base import AggregateProjection
    from projector.runtime import Runtime
    from projector.source.items import Source
    from projector.stores.aggregates import AggregateStore

logger = logging.getLogger(__name__)

Measures = dict[str, Decimal]
GROUP_MARK = "#group"  # natural (``#group#``) and hashed (``#group~sha256#``) group rows


class GroupCheck(ProjectionCheck):
    """Recomputes one aggregate projection from scanned items and compares it with its group rows.

    A group is drift when its row differs from the recomputation in the full pass and again after the
    settle wait (a second scan recomputes just the candidate groups, their rows are re-read) *by the same
    amount*: live changes move both sides, a corrupted or lost update keeps the difference.
    """

    def __init__(self, runtime: Runtime, projection: AggregateProjection) -> None:
        self.runtime = runtime
        self.projection = projection
        self.store: AggregateStore = runtime.store_for(projection)  # type: ignore[assignment]  # the aggregate kind's store
        self.generation = self.store.read_generation(projection)
        self.expected: dict[str, Measures] = {}
        self.first: dict[str, tuple[str, Measures, Measures]] = {}
        self.groups = 0  # groups compared in the full pass
        self._lock = threading.Lock()

    # the check's phases ---------------------------------------------------------------------------------
    def add(self, items: list[dict[str, Any]], read_at: float) -> None:
        self.collect(items)

    def first_pass(self) -> int:
        return self.first_passes([self])

    @classmethod
    def first_passes(cls, checks: Sequence[ProjectionCheck]) -> int:
        """The rows of every check's read generation in one consistent scan, then each comparison."""
        groups = [check for check in checks if isinstance(check, GroupCheck)]
        rows = read_group_rows(groups)
        for check in groups:
            found = rows[check.projection.name]
            check.groups = len(check.expected.keys() | found.keys())
            check.first = check.differences(found)
        return sum(len(check.first) for check in groups)

    def settle(self, source: Source, checked: int) -> Verdict:
        verdict = Verdict(self.projection.name, "aggregate", checked=self.groups)
        if not self.first:
            return verdict
        candidates = set(self.first)
        self.expected = {}
        source.scan(lambda page: self.collect(decoded(page), only=candidates))
        again = self.differences(self.rows_of(candidates), candidates)
        for group, (kind, expected, actual) in self.first.items():
            if group not in again:
                continue
            _, expected_now, actual_now = again[group]
            if delta(expected, actual) != delta(expected_now, actual_now):
                verdict.unsettled += 1
                continue
            verdict.findings.append(
                Finding(
                    kind, group, {"expected": self.render(expected_now), "actual": self.render(actual_now)}
                )
            )
        return verdict

    def backwards(self, verdict: Verdict, source: Source) -> int:
        if not verdict.drift:  # reads every contribution record: only when something is wrong
            return 0
        return aggregate_backwards(self.runtime, self.projection, self.generation, source)

    def repair(self, verdict: Verdict, rebuild: Rebuild | None, segments: int) -> tuple[int, str | None]:
        """Aggregates are repaired exactly by a rebuild of the projection into a new generation."""
        name = self.projection.name
        if self.store.describe(self.projection).rebuilding:
            return 0, "a rebuild is in progress: not repaired (its swap replaces the drifted generation)"
        if rebuild is None:
            return 0, f"not repaired: rebuild it with `projector backfill --rebuild --projection {name}`"
        status, reading = rebuild(self.projection, segments)
        if status != "finished":
            return 0, f"rebuild {status}: finish it with `projector backfill --rebuild --projection {name}`"
        return verdict.drift, f"rebuilt into {reading}"

    # recomputing ----------------------------------------------------------------------------------------
    def collect(self, items: Iterable[dict[str, Any]], only: set[str] | None = None) -> None:
        """Add the contributions of scanned items (to the ``only`` groups, when given)."""
        local: dict[str, Measures] = {}
        for item in items:
            try:
                contributions = self.projection.contributions(item)
            except Exception as error:  # a poison item contributes nothing, in the sink as here
                logger.debug("%s: cannot project an item: %s", self.projection.name, type(error).__name__)
                continue
            for group, measures in contributions.items():
                if only is None or group in only:
                    _accumulate(local.setdefault(group, {}), measures)
        with self._lock:
            for group, measures in local.items():
                _accumulate(self.expected.setdefault(group, {}), measures)

    def differences(
        self,
        rows: dict[str, Measures],
        groups: Iterable[str] | None = None,
    ) -> dict[str, tuple[str, Measures, Measures]]:
        """Per drifted group: (kind, expected, actual); measures absent from a row count as zero."""
        names = list(self.projection.measures)
        found: dict[str, tuple[str, Measures, Measures]] = {}
        for group in sorted(groups if groups is not None else self.expected.keys() | rows.keys()):
            expected = {name: self.expected.get(group, {}).get(name, Decimal(0)) for name in names}
            actual = {name: rows.get(group, {}).get(name, Decimal(0)) for name in names}
            if expected == actual:
                continue
            if group not in rows:
                kind = "missing"
            elif all(value == 0 for value in expected.values()):
                kind = "extra"
            else:
                kind = "mismatch"
            found[group] = (kind, expected, actual)
        return found

    def rows_of(self, groups: Iterable[str]) -> dict[str, Measures]:
        """The read generation's rows of ``groups`` (consistent GetItem each: a re-check is small)."""
        table = self.store.table_name
        rows: dict[str, Measures] = {}
        for group in groups:
            row_key = key(group_pk(self.projection.name, group), generation_sk(self.generation))
            item = retrying(Deadline.never(), is_transient, what="GetItem")(
                lambda row_key=row_key: self.store.client.get_item(
                    TableName=table, Key=row_key, ConsistentRead=True
                )
            ).get("Item")
            if item is not None:
                rows[group] = self._measures(item)
        return rows

    def _measures(self, item: dict[str, Any]) -> Measures:
        return {name: decimal_of(item[name]) for name in self.projection.measures if name in item}

    def render(self, measures: Measures) -> dict[str, Any]:
        return {
            name: render_measure(measure, measures.get(name, Decimal(0)))
            for name, measure in self.projection.measures.items()
        }


def read_group_rows(checks: list[GroupCheck]) -> dict[str, dict[str, Measures]]:
    """Every group row of each check's read generation, by projection and group, in one consistent Scan."""
    wanted = {check.projection.name: generation_sk(check.generation) for check in checks}
    by_name = {check.projection.name: check for check in checks}
    rows: dict[str, dict[str, Measures]] = {name: {} for name in wanted}
    if not checks:
        return rows
    store = checks[0].store

    def scan() -> None:
        for found in rows.values():
            found.clear()
        paginator = store.client.get_paginator("scan")
        pages = paginator.paginate(
            TableName=store.table_name,
            ConsistentRead=True,
            FilterExpression="contains(pk, :mark)",
            ExpressionAttributeValues={":mark": {"S": GROUP_MARK}},
        )
        for page in pages:
            for item in page.get("Items", []):
                pk = item["pk"]["S"]
                name = projection_of_group_row(pk)
                if name is None or wanted.get(name) != item["sk"]["S"]:
                    continue
                group = item[GROUP_KEY_ATTRIBUTE]["S"] if GROUP_KEY_ATTRIBUTE in item else group_of(pk, name)
                if group is not None:
                    rows[name][group] = by_name[name]._measures(item)

    retrying(Deadline.never(), is_transient, what="Scan of the aggregates table")(scan)
    return rows


def _accumulate(total: Measures, measures: Measures) -> None:
    for name, value in measures.items():
        total[name] = add(total.get(name, Decimal(0)), value)


def delta(expected: Measures, actual: Measures) -> Measures:
    """``actual - expected`` per measure: a real drift keeps it while live changes move both sides."""
    return {name: subtract(actual.get(name, Decimal(0)), value) for name, value in expected.items()}
