"""`projector setup`: create the projections' indexes, aliases and tables (idempotent)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from projector.cli.output import emit, json_option

if TYPE_CHECKING:
    from projector.setup import SetupReport


@click.command("setup")
@click.option(
    "--with-source-table",
    is_flag=True,
    help="Also create the source table with a NEW_AND_OLD_IMAGES stream (local use).",
)
@json_option
def command(with_source_table: bool, as_json: bool) -> None:
    """Create index templates, the first physical indexes and read/write aliases, and the aggregates table.

    Safe to run again: what exists is left as it is.
    """
    from projector.runtime import Runtime
    from projector.setup import setup

    report = setup(Runtime(), with_source_table=with_source_table)

    def human(data: SetupReport) -> None:
        if data["source_table"]:
            state = "created" if data["source_table"]["created"] else "already there"
            click.echo(f"source table   {data['source_table']['name']} ({state})")
        for index in data["indexes"]:
            click.echo(f"search         {index['projection']} -> alias {index['alias']}")
        if data["aggregates_table"]:
            click.echo(f"aggregates     table {data['aggregates_table']}")
        click.echo("setup complete")

    emit(report, as_json, human)
