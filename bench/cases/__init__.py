"""The benchmark cases; each ``run(ctx)`` answers its results.json entry."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from bench.env import BenchEnv
    from bench.workload import Workload


@dataclass(frozen=True, slots=True)
class Sizes:
    """How much each case does; ``--quick`` is the smoke (seconds), the default the real run (minutes)."""

    stream_records: int = 20_000
    batch_size: int = 1_000
    handler_rounds: int = 3
    per_record_records: int = 1_000
    per_record_rounds: int = 3
    cpu_records: int = 10_000
    cpu_rounds: int = 7
    import_runs: int = 9
    memory_batch: int = 1_000
    aggregate_records: int = 2_000
    aggregate_naive_records: int = 400
    aggregate_rounds: int = 2
    backfill_items: int = 1_500
    backfill_segments: tuple[int, ...] = (1, 2, 4)
    backfill_rounds: int = 2
    freshness_writes: int = 2_000
    freshness_rate: float = 20.0

    @classmethod
    def quick(cls) -> Sizes:
        return cls(
            stream_records=400,
            batch_size=100,
            handler_rounds=1,
            per_record_records=50,
            per_record_rounds=1,
            cpu_records=400,
            cpu_rounds=2,
            import_runs=2,
            memory_batch=100,
            aggregate_records=100,
            aggregate_naive_records=10,
            aggregate_rounds=1,
            backfill_items=40,
            backfill_rounds=1,
            freshness_writes=8,
            freshness_rate=4.0,
        )

    def to_json(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.__dataclass_fields__}


@dataclass(slots=True)
class Context:
    """What every case gets: sizes, the run's names on the servers, and the shared workloads."""

    sizes: Sizes
    env: BenchEnv
    quick: bool = False
    results: dict[str, Any] = field(default_factory=dict)  # the entries of the cases run so far
    _workloads: dict[int, Workload] = field(default_factory=dict)

    def workload(self, records: int) -> Workload:
        """The first ``records`` changes of the run's workload (one seed: every case sees the same stream)."""
        from bench.workload import make_workload

        if records not in self._workloads:
            self._workloads[records] = make_workload(records)
        return self._workloads[records]
