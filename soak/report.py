"""The soak's verdict: one line of figures for people, the same as JSON (``--report PATH``)."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any


@dataclass(slots=True)
class SoakReport:
    mode: str
    seed: int
    names: dict[str, str] = field(default_factory=dict)
    engine: dict[str, Any] = field(default_factory=dict)
    engine_after: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0
    seeded: int = 0
    changes: int = 0
    workload: dict[str, int] = field(default_factory=dict)
    faults: dict[str, int] = field(default_factory=dict)
    fault_activations: dict[str, int] = field(default_factory=dict)
    expected_faults: list[str] = field(default_factory=list)
    disabled_faults: list[str] = field(default_factory=list)
    http_layer: dict[str, int] = field(default_factory=dict)
    runners: dict[str, dict[str, Any]] = field(default_factory=dict)
    runner_crashes: list[int] = field(default_factory=list)
    replays: dict[str, int] = field(default_factory=dict)
    shadows: list[dict[str, Any]] = field(default_factory=list)
    backfills: list[list[dict[str, Any]]] = field(default_factory=list)
    redrives: list[dict[str, Any]] = field(default_factory=list)
    final_redrive: dict[str, Any] = field(default_factory=dict)
    opensearch_restarts: list[dict[str, Any]] = field(default_factory=list)
    poison_fixed_at_end: int = 0
    drain_s: float = 0.0
    dead_letters_all: list[dict[str, Any]] = field(default_factory=list)
    dead_letters_left: list[dict[str, Any]] = field(default_factory=list)
    verify: dict[str, Any] = field(default_factory=dict)
    verify_exit: int | None = None
    notes: list[str] = field(default_factory=list)
    error: str | None = None

    # figures ---------------------------------------------------------------------------------------------
    @property
    def drift(self) -> int | None:
        """Drift verify found (None when verify did not run)."""
        if not self.verify:
            return None
        return int(self.verify.get("drift") or 0)

    @property
    def ok(self) -> bool:
        return self.error is None and self.drift == 0 and self.verify_exit == 0

    def figures(self) -> dict[str, Any]:
        main = self.runners.get("main", {})
        drain = self.runners.get("drain", {})
        shadow = self.runners.get("shadow", {})
        letters: dict[str, int] = {}
        for letter in self.dead_letters_all:
            letters[letter.get("reason", "?")] = letters.get(letter.get("reason", "?"), 0) + 1
        restarts = [entry for entry in self.opensearch_restarts if entry.get("restarted")]
        return {
            "mode": self.mode,
            "seed": self.seed,
            "seconds": self.seconds,
            "changes": self.changes,
            "seeded": self.seeded,
            "batches": int(main.get("batches", 0)) + int(drain.get("batches", 0)),
            "records": int(main.get("records", 0)) + int(drain.get("records", 0)),
            "faults": self.faults,
            "runner_kills": int(main.get("kills", 0)),
            "runner_restarts": max(0, int(main.get("starts", 0)) - 1),
            "runner_crashes": len(self.runner_crashes),
            "replayed_batches": sum(v for k, v in self.replays.items() if k.endswith("_batches")),
            "replayed_records": sum(v for k, v in self.replays.items() if k.endswith("_records")),
            "shadow_runs": len(self.shadows),
            "shadow_batches": int(shadow.get("batches", 0)),
            "backfills": len(self.backfills),
            "backfills_finished": sum(
                1 for run in self.backfills if any(a.get("status") == "finished" for a in run)
            ),
            "dead_letters": len(self.dead_letters_all),
            "dead_letters_by_reason": letters,
            "redriven": len(self.dead_letters_all) - len(self.dead_letters_left),
            "dead_letters_left": len(self.dead_letters_left),
            "poison_versions": sum(v for k, v in self.workload.items() if k.startswith("poison_bad")),
            "opensearch_restarts": len(restarts),
            "verify_checked": self.verify.get("checked") if self.verify else None,
            "drift": self.drift,
        }

    def line(self) -> str:
        f = self.figures()
        faults = " ".join(f"{kind}={count}" for kind, count in f["faults"].items()) or "none"
        if self.disabled_faults:
            faults += f" (disabled: {','.join(self.disabled_faults)})"
        drift = "not verified" if f["drift"] is None else str(f["drift"])
        skipped = [entry.get("note", "") for entry in self.opensearch_restarts if not entry.get("restarted")]
        restart_note = f" ({skipped[0]})" if skipped and not f["opensearch_restarts"] else ""
        return (
            f"soak {f['mode']} seed={f['seed']} {f['seconds']:.0f}s: changes={f['changes']} (seeded {f['seeded']}) "
            f"batches={f['batches']} records={f['records']} | faults: {faults} | "
            f"runner kills={f['runner_kills']} restarts={f['runner_restarts']} crashes={f['runner_crashes']} | "
            f"replays={f['replayed_batches']} batches/{f['replayed_records']} records "
            f"+ shadow runs={f['shadow_runs']} ({f['shadow_batches']} batches) | "
            f"backfills={f['backfills_finished']}/{f['backfills']} | "
            f"dead letters={f['dead_letters']} {f['dead_letters_by_reason']} redriven={f['redriven']} "
            f"left={f['dead_letters_left']} | poison versions={f['poison_versions']} | "
            f"opensearch restarts={f['opensearch_restarts']}{restart_note} | "
            f"verified={f['verify_checked']} drift={drift}"
        )

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["figures"] = self.figures()
        data["line"] = self.line()
        data["ok"] = self.ok
        return data

    def write(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.to_json(), indent=1, default=str) + "\n", encoding="utf-8")
