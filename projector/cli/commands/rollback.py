"""`projector rollback NAME`: abandon a rebuild in progress, or swap reads back to the previous build."""

from __future__ import annotations

from typing import TypedDict

import click

from projector.cli.output import CommandError, emit, json_option


class _Rollback(TypedDict):
    projection: str
    kind: str
    was_rebuilding: bool
    previous: str | None  # what served reads before
    reading: str
    exact: bool
    next: str | None  # the command that makes it exact again, when it is not


@click.command("rollback")
@click.argument("name")
@json_option
def command(name: str, as_json: bool) -> None:
    """Undo the last rebuild of projection NAME (search index or aggregate generation), atomically.

    During a rebuild: stop filling the new index / generation; reads never moved. After one: reads and
    writes go back to the previous index / generation. A search index that kept receiving live writes
    after the swap is exact; otherwise (aggregates, older indexes) it missed the changes written since,
    and the command says to run `projector verify --repair --projection NAME`.
    """
    from projector.backfill import Rebuilds
    from projector.runtime import Runtime
    from projector.sinks.aggregates.table import RebuildError
    from projector.sinks.opensearch.errors import IndexLayoutError

    runtime = Runtime()
    projection = runtime.registry.get(name)
    rebuilds = Rebuilds(runtime)
    try:
        before = rebuilds.layout(projection)
        reading = rebuilds.rollback(projection)
    except (RebuildError, IndexLayoutError) as error:
        raise CommandError(str(error)) from None
    # still written since the swap (search indexes keep the previous build behind the write alias)
    exact = before.rebuilding or reading in before.writes
    data: _Rollback = {
        "projection": name,
        "kind": before.kind,
        "was_rebuilding": before.rebuilding,
        "previous": before.read,
        "reading": reading,
        "exact": exact,
        "next": None if exact else f"projector verify --repair --projection {name}",
    }

    def human(result: _Rollback) -> None:
        if result["was_rebuilding"]:
            click.echo(f"{name}: rebuild abandoned; reads and writes stay on {result['reading']}")
            return
        click.echo(f"{name}: reads and writes moved back from {result['previous']} to {result['reading']}")
        if result["next"]:
            click.echo(f"it missed the changes written since the swap: run `{result['next']}`")

    emit(data, as_json, human)
