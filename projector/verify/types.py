"""What verify finds: drift per projection, by kind, with a few examples."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

KINDS = ("missing", "stale", "extra", "mismatch")
EXAMPLES = 5
#: What a report says when versions went backwards (``projector.verify.restore`` finds such items).
ADVICE = (
    "source versions went backwards (table restored?): the projections hold newer versions than the "
    "table, so every update of these items is dropped as stale until its version passes the stored one "
    "- run `projector backfill --rebuild` (see docs/versioning.md)"
)


@dataclass(frozen=True, slots=True)
class Finding:
    """One drifted item (search) or group (aggregate): ``kind`` is one of ``KINDS``."""

    kind: str
    id: str
    detail: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "id": self.id, **self.detail}


@dataclass(slots=True)
class Verdict:
    """One projection: what was compared, what drifted (seen twice, stable), what was still moving."""

    name: str
    kind: str
    checked: int = 0
    findings: list[Finding] = field(default_factory=list)
    unsettled: int = 0
    kept: int = 0  # search, keep_expired: visible documents of items gone from the table, kept on purpose
    repaired: int | None = None
    note: str | None = None
    backwards: int = 0  # items whose stored version is newer than the table's (verify.restore)

    @property
    def drift(self) -> int:
        return len(self.findings)

    def counts(self) -> dict[str, int]:
        found = Counter(finding.kind for finding in self.findings)
        return {kind: found.get(kind, 0) for kind in KINDS}

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "kind": self.kind,
            "checked": self.checked,
            **self.counts(),
            "drift": self.drift,
            "unsettled": self.unsettled,
            "backwards": self.backwards,
            **({"kept": self.kept} if self.kind == "search" else {}),
            "examples": [finding.to_json() for finding in self.findings[:EXAMPLES]],
        }
        if self.repaired is not None:
            data["repaired"] = self.repaired
        if self.note:
            data["note"] = self.note
        return data


@dataclass(slots=True)
class VerifyReport:
    """A whole verify run; after ``--repair`` also the repair and the verify that followed it."""

    checked: int = 0
    seconds: float = 0.0
    projections: dict[str, Verdict] = field(default_factory=dict)
    after_repair: VerifyReport | None = None

    @property
    def drift(self) -> int:
        return sum(verdict.drift for verdict in self.projections.values())

    @property
    def final_drift(self) -> int:
        """The drift left at the end: after the repair when one ran."""
        return self.after_repair.drift if self.after_repair is not None else self.drift

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "checked": self.checked,
            "drift": self.drift,
            "seconds": round(self.seconds, 3),
            "unsettled": sum(verdict.unsettled for verdict in self.projections.values()),
            "projections": {name: verdict.to_json() for name, verdict in self.projections.items()},
        }
        backwards = {name: v.backwards for name, v in self.projections.items() if v.backwards}
        if backwards:
            data["versions_went_backwards"] = {
                "items": max(backwards.values()),
                "projections": backwards,
                "advice": ADVICE,
            }
        if self.after_repair is not None:
            data["repaired"] = {name: verdict.repaired or 0 for name, verdict in self.projections.items()}
            data["after_repair"] = self.after_repair.to_json()
        return data
