"""verify names a restored table: stored versions newer than the table's, per projection (issue 14, case 8)."""

from __future__ import annotations

import pytest

from projector.verify.restore import search_backwards
from projector.verify.types import ADVICE, Finding, Verdict, VerifyReport

pytestmark = pytest.mark.unit


def stale(item_id: str, stored_rev: int, source_version: int | None, deleted: bool = False) -> Finding:
    stored = {"life": 0, "rev": stored_rev, "deleted": deleted, "visible": not deleted}
    return Finding("stale", item_id, {"stored": stored, "source_version": source_version})


def test_only_stale_documents_above_the_source_version_count_as_backwards() -> None:
    verdict = Verdict("orders", "search")
    verdict.findings = [
        stale("a", 5, 2),  # restored: counts
        stale("b", 5, 7),  # behind the source (a lost update), not a restore
        stale("c", 5, None),  # no usable version in the source
        stale("d", 5, 2, deleted=True),  # a tombstone: a re-creation, not a restore
        Finding("missing", "e", {"source_version": 1}),
        Finding("mismatch", "f", {"stored": {"life": 0, "rev": 9, "deleted": False}, "source_version": 1}),
    ]
    assert search_backwards(verdict) == 1


def test_the_report_names_the_situation_only_when_found() -> None:
    report = VerifyReport(checked=10)
    report.projections = {"orders": Verdict("orders", "search"), "totals": Verdict("totals", "aggregate")}
    data = report.to_json()
    assert "versions_went_backwards" not in data and data["projections"]["orders"]["backwards"] == 0
    report.projections["orders"].backwards = 3
    report.projections["totals"].backwards = 2
    named = report.to_json()["versions_went_backwards"]
    assert named == {"items": 3, "projections": {"orders": 3, "totals": 2}, "advice": ADVICE}
    assert ADVICE.startswith("source versions went backwards (table restored?)")
    assert "projector backfill --rebuild" in ADVICE
