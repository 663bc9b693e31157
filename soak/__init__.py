"""Chaos soak: projector's read models must stay exact under faults, crashes, replays and races.

``scripts/soak`` runs it; see docs/soak.md. Modules: ``workload`` (source-table writers), ``faults`` and
``http_faults`` (Toxiproxy toxics, HTTP 429/503), ``runners`` (``projector run`` subprocesses),
``replay`` (a handler that re-delivers batches), ``tasks`` (backfill, redrive, OpenSearch restart),
``timeline`` (the chaos phase), ``orchestrator`` (the whole run), ``report`` (figures).
"""
