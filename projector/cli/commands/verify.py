"""`projector verify [--repair]`: compare every projection with the source table; exit 1 on drift."""

from __future__ import annotations

import logging
from typing import Any

import click

from projector.cli.output import (
    CommandError,
    emit,
    json_option,
    print_table,
    projection_option,
    segments_option,
)

logger = logging.getLogger(__name__)


@click.command("verify")
@click.option(
    "--repair",
    is_flag=True,
    help="Rewrite the drifted documents (versioned) and rebuild drifted aggregates, then verify again.",
)
@projection_option
@segments_option("Parallel scan workers over the source table.")
@click.option(
    "--settle",
    "settle_s",
    type=click.FloatRange(0, 600),
    default=5.0,
    show_default=True,
    metavar="SECONDS",
    help="Pause before re-checking candidates; should exceed the stream's lag.",
)
@json_option
def command(
    repair: bool, projections: tuple[str, ...], segments: int, settle_s: float, as_json: bool
) -> None:
    """Scan the source table and compare it with every projection's read index or generation.

    Search: missing, stale, extra and mismatched documents. Aggregates: every group row against a
    recomputation from the scan. Only drift that is still there after --settle seconds, with the
    source item unchanged (or the group's difference unchanged), is reported; items still changing
    count as "unsettled". Exit 1 when drift remains (after --repair: when the repair left any).
    """
    from projector.backfill.run import rebuilder
    from projector.runtime import Runtime
    from projector.verify import Verifier, VerifyOptions

    options = VerifyOptions(projections=projections, segments=segments, settle_s=settle_s, repair=repair)
    try:
        runtime = Runtime()
        report = Verifier(runtime, options, rebuild=rebuilder(runtime)).run()
    except LookupError as error:
        raise CommandError(str(error)) from None
    emit(report.to_json(), as_json, _print_report)
    if report.final_drift:
        raise CommandError(
            f"drift: {report.final_drift} item(s) or group(s) differ from the source", exit_code=1
        )


def _print_report(data: dict[str, Any], title: str = "verify") -> None:
    rows = [
        [
            name,
            v["kind"],
            v["checked"],
            v["missing"],
            v["stale"],
            v["extra"],
            v["mismatch"],
            v["unsettled"],
            v.get("repaired", ""),
        ]
        for name, v in data["projections"].items()
    ]
    print_table(
        f"{title}: {data['checked']} source items, drift {data['drift']}",
        ["projection", "kind", "checked", "missing", "stale", "extra", "mismatch", "unsettled", "repaired"],
        rows,
    )
    for name, verdict in data["projections"].items():
        for example in verdict["examples"]:
            click.echo(f"  {name}: {example}")
        if verdict.get("note"):
            click.echo(f"  {name}: {verdict['note']}")
    if data.get("versions_went_backwards"):
        backwards = data["versions_went_backwards"]
        counts = ", ".join(f"{name} {count}" for name, count in backwards["projections"].items())
        click.echo(f"  {backwards['advice']} [{counts}]")
    if data.get("after_repair"):
        _print_report(data["after_repair"], title="after repair")
