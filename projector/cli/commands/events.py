"""`projector events append|read`: write and read the streams of the events table (the source table)."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import click

from projector.cli.output import CommandError, emit, json_option, print_table

if TYPE_CHECKING:
    from projector.events import EventStore
    from projector.events.layout import EventLayout

logger = logging.getLogger(__name__)

preset_option = click.option(
    "--preset",
    type=click.Choice(["projector", "eventsourcing"]),
    default=None,
    help="The events table's layout; default: the one the loaded event projections declare, else projector.",
)


@click.group("events")
def command() -> None:
    """Append to and read event streams of the events table (PROJECTOR_SOURCE_TABLE)."""


def _store(preset_name: str | None) -> EventStore:
    from projector.clients import dynamodb_client
    from projector.config import load_settings
    from projector.events import EventStore, preset
    from projector.events.projection import layout_for

    settings = load_settings()
    layout: EventLayout | None  # None: the store's default (the projector preset)
    if preset_name:
        layout = preset(preset_name)
    else:
        from projector.projection import load_projections

        try:
            layout = layout_for(load_projections(settings.projections).all)
        except Exception as error:  # no projections to learn from: the default layout
            logger.debug("layout from the projections unavailable: %s", error)
            layout = None
    return EventStore(dynamodb_client(settings), settings.source_table, layout)


@command.command("append")
@click.argument("stream")
@click.option("--expected-version", type=click.IntRange(0), required=True, help="The stream's version now.")
@click.option("--type", "event_type", required=True, help="The event type, e.g. OrderPlaced.")
@click.option("--data", "data", default="{}", show_default=True, help="The event's fields as a JSON object.")
@preset_option
@json_option
def append(
    stream: str, expected_version: int, event_type: str, data: str, preset: str | None, as_json: bool
) -> None:
    """Append one event to STREAM if the stream is at --expected-version (exit 1 if it is not)."""
    from projector.events import AppendError, ConcurrencyError, NewEvent
    from projector.events.store import decimal_json

    try:
        payload = decimal_json(data)
    except ValueError as error:
        raise CommandError(f"--data is not valid JSON: {error}") from None
    if not isinstance(payload, dict):
        raise CommandError("--data must be a JSON object")
    store = _store(preset)
    try:
        version = store.append(stream, [NewEvent(event_type, payload)], expected_version)
    except ConcurrencyError as error:
        raise CommandError(str(error), exit_code=1) from None
    except AppendError as error:
        raise CommandError(str(error)) from None
    emit(
        {"stream": stream, "version": version, "type": event_type},
        as_json,
        lambda row: click.echo(f"appended {row['type']} to {row['stream']}: version {row['version']}"),
    )


@command.command("read")
@click.argument("stream")
@click.option(
    "--after", type=click.IntRange(0), default=0, show_default=True, help="Start after this version."
)
@click.option("--up-to", type=click.IntRange(1), default=None, help="Stop at this version.")
@preset_option
@json_option
def read(stream: str, after: int, up_to: int | None, preset: str | None, as_json: bool) -> None:
    """Print STREAM's events in version order."""
    store = _store(preset)
    events = [
        {
            "stream": event.stream_id,
            "version": event.version,
            "type": event.type,
            "data": event.data,
            "recorded_at": event.recorded_at,
        }
        for event in store.read(stream, after=after, up_to=up_to)
    ]

    def human(rows: list[dict[str, Any]]) -> None:
        import json

        from projector.sinks.opensearch.serializer import to_json

        print_table(
            f"{stream}: {len(rows)} event(s)",
            ["version", "type", "recorded_at", "data"],
            [
                (r["version"], r["type"], r["recorded_at"], json.dumps(to_json(r["data"]), sort_keys=True))
                for r in rows
            ],
        )

    emit(events, as_json, human)
