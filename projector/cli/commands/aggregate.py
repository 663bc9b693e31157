"""`projector aggregate NAME KEY`: read one group of an aggregate projection."""

from __future__ import annotations

import logging
from typing import Any

import click

from projector.cli.output import CommandError, emit, json_option, print_table

logger = logging.getLogger(__name__)


@click.command("aggregate")
@click.argument("name")
@click.argument("key")
@json_option
def command(name: str, key: str, as_json: bool) -> None:
    """Print the measures of aggregate NAME for group KEY (zeros when no live item is in the group).

    With --json: {"name": NAME, "key": KEY, measure: value, ...}; counts are integers, sums decimal
    strings with the measure's fixed number of fractional digits.
    """
    from projector.clients import dynamodb_client
    from projector.config import load_settings
    from projector.projection import AggregateProjection, load_projections
    from projector.sinks.aggregates import read_aggregate

    settings = load_settings()
    registry = load_projections(settings.projections)
    projection = registry.by_name.get(name)
    if not isinstance(projection, AggregateProjection):
        known = ", ".join(sorted(p.name for p in registry.aggregates)) or "none"
        raise CommandError(f"unknown aggregate {name!r}; aggregates: {known}", exit_code=2)
    from botocore.exceptions import ClientError

    from projector.retry import Deadline

    try:
        data = read_aggregate(
            dynamodb_client(settings), settings, projection, key, deadline=Deadline.after(30)
        )
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") == "ResourceNotFoundException":
            raise CommandError(
                f"aggregates table {settings.aggregates_table!r} does not exist; run `projector setup`",
                exit_code=1,
            ) from None
        raise

    def human(row: dict[str, Any]) -> None:
        measures = [(measure, row[measure]) for measure in projection.measures]
        print_table(f"{name}  {projection.group_name} = {key}", ["measure", "value"], measures)

    emit(data, as_json, human)
