"""How hard and how long the soak pushes: the full profile (``--minutes N``) and ``--quick`` (~60 s)."""

from __future__ import annotations

from dataclasses import dataclass, field

from soak.faults import LaneTiming
from soak.workload import WorkloadOptions

SETUP_AND_QUIESCE_S = 75.0  # what a full run keeps for setup, drain, redrive and verify


@dataclass(frozen=True, slots=True)
class Profile:
    """Every knob of one soak; times are seconds, ``*_at`` are fractions of the chaos phase."""

    chaos_s: float
    workload: WorkloadOptions
    lanes: LaneTiming
    kill_every_s: tuple[float, float]
    restart_after_s: tuple[float, float]
    shadow_at: tuple[float, ...]
    shadow_for_s: float
    backfill_at: tuple[float, ...]
    redrive_at: tuple[float, ...]
    opensearch_restart_at: float | None
    snapshot_every_s: float
    batch_sizes: tuple[int, ...] = (1, 7, 25, 100, 250)
    #: 0 and 1 make a fault of a few seconds exhaust the retries: dead letters to redrive late
    max_retries: tuple[int, ...] = (0, 1, 3, 5)
    #: the function's timeout; minus the 3 s margin, the deadline the handler's own retries stop at
    timeouts_s: tuple[int, ...] = (6, 10, 20)
    drain_timeout_s: float = 300.0
    backfill_segments: int = 2
    tags: dict[str, str] = field(default_factory=dict)

    @classmethod
    def quick(cls) -> Profile:
        return cls(
            chaos_s=45.0,
            workload=WorkloadOptions(
                writers=2,
                rate=14.0,
                seed_orders=300,
                poison=3,
                poison_fix_after_s=(2.0, 8.0),
                poison_fix_latest_s=20.0,
            ),
            lanes=LaneTiming(hold=(0.8, 1.4), rest=(1.5, 2.5)),
            kill_every_s=(8.0, 12.0),
            restart_after_s=(0.1, 1.0),
            shadow_at=(0.25,),
            shadow_for_s=15.0,
            backfill_at=(0.1,),
            redrive_at=(0.7,),
            opensearch_restart_at=0.45,
            snapshot_every_s=2.0,
            drain_timeout_s=120.0,
        )

    @classmethod
    def full(cls, minutes: float) -> Profile:
        chaos = max(30.0, minutes * 60.0 - SETUP_AND_QUIESCE_S)
        redrives = tuple(round(step / 10, 2) for step in range(2, 10, 2))
        return cls(
            chaos_s=chaos,
            workload=WorkloadOptions(
                writers=3,
                rate=12.0,
                seed_orders=1500,
                poison=max(3, int(minutes)),
                poison_fix_after_s=(3.0, 30.0),
            ),
            lanes=LaneTiming(hold=(2.0, 12.0), rest=(1.0, 8.0)),
            kill_every_s=(12.0, 45.0),
            restart_after_s=(0.1, 3.0),
            shadow_at=(0.2, 0.5, 0.75),
            shadow_for_s=min(40.0, chaos / 8),
            backfill_at=(0.1, 0.55),
            redrive_at=redrives,
            opensearch_restart_at=0.4,
            snapshot_every_s=10.0,
            batch_sizes=(10, 25, 100, 250, 500),
            drain_timeout_s=420.0,
        )
