"""Verify: compare every projection with the source table, report stable drift, repair it exactly.

Units: ``source`` (parallel scan and re-reads), ``checks`` (what verify asks of every kind of
projection), ``opensearch`` (search projections: compare, extras, versioned repair writes),
``aggregates`` (group recomputation and rows), ``verifier`` (the two passes over whatever checks the
projections' kinds name, repair and the verify after it), ``types`` (findings and the report).
"""

from __future__ import annotations

from projector.verify.types import Finding, Verdict, VerifyReport
from projector.verify.verifier import Verifier, VerifyOptions

__all__ = ["Finding", "Verdict", "Verifier", "VerifyOptions", "VerifyReport"]
