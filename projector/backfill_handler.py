"""The Lambda entry point of a backfill fanned out by Step Functions: ``lambda_handler(event, context)``.

One function, four actions (``event["action"]``), the steps of the state machine in infra/:

- ``begin``: begin the rebuilds when asked (an export load needs them begun before the export), and
  ``plan`` the run: ``{"items": [work item, ...], "started_at": ..., "rebuild": ...}``;
- ``apply`` (also an event that is just a work item): apply one item from its cursor until it is done
  or the deadline nears; answers ``{"done": bool, "item": <the item, cursor advanced>, counts}``, so
  the next invocation continues where this one stopped. A failed item raises (the Map's Retry/Catch);
- ``finish``: swap reads to the rebuilt indexes / generations (nothing without a rebuild);
- ``verify``: what serves reads per projection; with ``"full": true`` a whole ``projector verify``.

The CLI's ``projector backfill`` runs the same pieces (``projector.backfill.workitems``).
"""

from __future__ import annotations

import logging
from typing import Any

from projector.backfill.workitems import DEFAULT_MARGIN_MS, WorkItem, apply_item, plan
from projector.config.exceptions import ConfigurationError
from projector.exceptions import ProjectorError
from projector.retry.deadline import Deadline
from projector.runtime import Runtime

logger = logging.getLogger(__name__)

_runtime: Runtime | None = None


class BackfillItemError(ProjectorError):
    """An item could not be applied (a file failing its checks, writes failing): the Map retries it."""


def runtime() -> Runtime:
    """The process-wide engine, built on the first invocation."""
    global _runtime
    if _runtime is None:
        _runtime = Runtime()
    return _runtime


def reset_runtime() -> None:
    global _runtime
    _runtime = None


def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    if not isinstance(event, dict):
        raise ConfigurationError("a backfill event is a JSON object")
    action = event.get("action", "apply")
    engine = runtime()
    if action == "begin":
        return begin(engine, event)
    if action == "apply":
        return apply(engine, event, context)
    if action == "finish":
        return finish(engine, event)
    if action == "verify":
        return verify(engine, event)
    raise ConfigurationError(f"unknown backfill action {action!r} (begin, apply, finish, verify)")


def _backfill(engine: Runtime, event: dict[str, Any], export: Any = None) -> Any:
    from projector.backfill import Backfill, BackfillOptions

    options = BackfillOptions(projections=tuple(event.get("projections") or ()))
    return Backfill(engine, options, export=export)


def begin(engine: Runtime, event: dict[str, Any]) -> dict[str, Any]:
    """Begin the rebuilds (when asked) and plan the items; the Map runs over ``items``.

    From the state machine the execution input is ``event["input"]``, beside the template's defaults
    (``default_concurrency``, ``default_rate``: strings, as DefinitionSubstitutions writes them).
    """
    from projector.backfill.exportjobs import resolve
    from projector.clients import s3_client

    defaults = {"concurrency": event.get("default_concurrency"), "rate": event.get("default_rate")}
    event = {**event, **event.get("input", {})}
    most = int(defaults["concurrency"] or 0) or None
    concurrency = int(event.get("concurrency") or most or 1)
    if most is not None:
        concurrency = min(concurrency, most)
    rate = float(event.get("rate") or defaults["rate"] or 0) or None
    settings = engine.settings
    export = None
    if event.get("export_url") or event.get("export_arn"):
        export = resolve(
            engine.dynamodb,
            s3_client(settings),
            table=settings.source_table,
            region=settings.region,
            url=event.get("export_url"),
            export_arn=event.get("export_arn"),
            export_time=event.get("export_time"),
        )
    job = _backfill(engine, event, export)
    projections = job.selected()
    rebuild = None
    if event.get("rebuild"):
        if export is None:
            rebuild = job.begin_phase()  # before the scan's start: the stream covers the rest
        else:
            rebuild = job.begun()
            job.check_begun_before_export(projections, rebuild)
    items = plan(
        settings.source_table,
        total_segments=int(event.get("total_segments") or 1),
        export=export,
        projections=[p.name for p in projections],
        page_size=int(event.get("page_size") or 500),
        rate=rate,
        concurrency=concurrency,
    )
    documents = [item.model_dump(mode="json") for item in items]
    where = _write_plan(engine, event.get("plans_url"), documents)
    return {
        "items": [] if where else documents,
        **(where or {}),
        "count": len(items),
        "concurrency": concurrency,
        "rebuild_requested": bool(event.get("rebuild")),
        "projections": [p.name for p in projections],
        "verify": bool(event.get("verify")),
        "started_at": items[0].started_at if items else None,
        "rebuild": rebuild,
        "export": export.to_json() if export is not None else None,
    }


def _write_plan(engine: Runtime, url: str | None, documents: list[dict[str, Any]]) -> dict[str, str] | None:
    """With ``plans_url`` (s3://bucket/prefix): the items as one JSON array there, for the Map's
    ItemReader (an execution's state is limited to 256 KiB; a plan of thousands of items is not)."""
    if not url:
        return None
    import json
    import uuid
    from urllib.parse import urlparse

    from projector.clients import s3_client

    parsed = urlparse(url)
    key = f"{parsed.path.strip('/')}/{uuid.uuid4().hex}.json".lstrip("/")
    s3_client(engine.settings).put_object(
        Bucket=parsed.netloc, Key=key, Body=json.dumps(documents).encode(), ContentType="application/json"
    )
    return {"bucket": parsed.netloc, "key": key}


def apply(engine: Runtime, event: dict[str, Any], context: Any) -> dict[str, Any]:
    """One work item from its cursor; raises when it failed so the state machine retries it."""
    raw = event.get("item", event)
    item = WorkItem.model_validate({k: v for k, v in raw.items() if k != "action"})
    margin = int(event.get("margin_ms", DEFAULT_MARGIN_MS))
    result = apply_item(engine, item, Deadline.from_context(context, margin))
    if result.error:
        raise BackfillItemError(f"{item.label}: {result.error}")
    return result.model_dump(mode="json")


def finish(engine: Runtime, event: dict[str, Any]) -> dict[str, Any]:
    if not event.get("rebuild"):
        return {"swapped": False}
    return {"swapped": True, "projections": _backfill(engine, event).finish_phase()}


def verify(engine: Runtime, event: dict[str, Any]) -> dict[str, Any]:
    job = _backfill(engine, event)
    summary: dict[str, Any] = {
        "layout": {p.name: job.rebuilds.layout(p).to_json() for p in job.selected()},
    }
    if event.get("full"):
        from projector.verify import Verifier, VerifyOptions

        report = Verifier(engine, VerifyOptions(projections=tuple(event.get("projections") or ()))).run()
        summary["verify"] = {"checked": report.checked, "drift": report.drift}
    return summary
