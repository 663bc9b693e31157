"""``known_states_gain``: the handler with remembered states against the same handler reading every id.

Both are the real handler on the ``handler_vs_bulk`` stream (fresh index each run, so what a run remembers
is only what its own earlier batches wrote, as in a warm Lambda container); the only difference is the
document sink's memory (projector/sinks/opensearch/known.py), switched per run. Runs alternate.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from bench.cases.documents import Indexes, _handle_all, _warm_handler
from bench.harness import Goal, Samples, alternate, compare, log, timed

if TYPE_CHECKING:
    from bench.cases import Context

GOAL = Goal(">=", 1.0)


def known_states_gain(ctx: Context) -> dict[str, Any]:
    from projector.handler import runtime
    from projector.sinks.opensearch.known import KnownStates

    sizes = ctx.sizes
    workload = ctx.workload(sizes.stream_records)
    batches = workload.batches(sizes.batch_size)
    places = Indexes(ctx)
    _warm_handler(ctx, places, batches[0])
    engine = runtime()
    sink = engine.store_for(engine.registry.get("orders")).writer  # the search documents' writer
    remembered = Samples("handler, states remembered", "records/s")
    reading = Samples("handler, every id read (mget)", "records/s")
    checks: dict[str, Any] = {"failed_batches": 0, "mismatches": 0}

    def run(samples: Samples, known: KnownStates | None) -> None:
        sink.known = known
        places.fresh_handler_index()
        seconds, failures = timed(lambda: _handle_all(batches))
        samples.add(len(workload.records) / seconds)
        checks["failed_batches"] += failures
        checks["mismatches"] += places.mismatches(places.alias, workload.live)
        log(f"  {samples.label}: {len(workload.records)} records in {seconds:.2f} s")

    try:
        alternate(
            sizes.handler_rounds + 1,
            {
                "remembered": lambda _: run(remembered, KnownStates()),
                "reading": lambda _: run(reading, None),
            },
        )
    finally:
        sink.known = KnownStates()
    return compare(
        remembered,
        reading,
        GOAL,
        records=len(workload.records),
        batch_size=sizes.batch_size,
        checks=checks,
        note="same handler, same stream; only the per-batch mget of already known ids differs",
    )
