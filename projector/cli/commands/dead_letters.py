"""`projector dead-letters list|redrive`: inspect and replay poison records."""

from __future__ import annotations

from typing import Any, TypedDict

import click

from projector.cli.output import CommandError, emit, json_option, print_table


class _Unreadable(TypedDict):
    name: str
    location: str
    error: str


class _Listing(TypedDict):
    count: int
    letters: list[dict[str, Any]]  # DeadLetter.model_dump(mode="json")
    unreadable: list[_Unreadable]


class _Redriven(TypedDict):
    id: str
    redriven: bool
    error: str | None


class _Redrive(TypedDict):
    redriven: int
    failed: int
    letters: list[_Redriven]


@click.group("dead-letters")
def command() -> None:
    """Inspect and replay records that could not be applied (PROJECTOR_DEAD_LETTERS)."""


@command.command("list")
@click.option("--all", "include_redriven", is_flag=True, help="Include letters already redriven.")
@json_option
def list_letters(include_redriven: bool, as_json: bool) -> None:
    """List dead letters: id, reason, projection, sequence number and error."""
    from projector.runtime import Runtime

    store = Runtime().dead_letters
    letters = list(store.list(include_redriven=include_redriven))
    data: _Listing = {
        "count": len(letters),
        "letters": [letter.model_dump(mode="json") for letter in letters],
        "unreadable": [
            {"name": bad.name, "location": bad.location, "error": bad.error} for bad in store.skipped
        ],
    }

    def human(payload: _Listing) -> None:
        rows = [
            (
                entry["id"],
                entry["reason"],
                entry["projection"] or "-",
                entry["sequence_number"] or "-",
                entry["error"][:100],
            )
            for entry in payload["letters"]
        ]
        print_table(
            f"{payload['count']} dead letters", ["id", "reason", "projection", "sequence", "error"], rows
        )
        for bad in payload["unreadable"]:
            click.echo(f"skipped {bad['location']}: {bad['error']}", err=True)

    emit(data, as_json, human)


@command.command("redrive")
@click.option("--id", "letter_ids", multiple=True, help="Redrive only these letters (default: all pending).")
@json_option
def redrive_letters(letter_ids: tuple[str, ...], as_json: bool) -> None:
    """Replay pending dead letters through the versioned writes; applied ones move to redriven/.

    A redrive never regresses newer state: each record is checked against the stored version like any
    late delivery. Exit 1 when some letters still fail.
    """
    from projector.redrive import redrive
    from projector.runtime import Runtime

    results = list(redrive(Runtime(), set(letter_ids) if letter_ids else None))
    data: _Redrive = {
        "redriven": sum(1 for r in results if r.redriven),
        "failed": sum(1 for r in results if not r.redriven),
        "letters": [{"id": r.id, "redriven": r.redriven, "error": r.error} for r in results],
    }

    def human(payload: _Redrive) -> None:
        for entry in payload["letters"]:
            click.echo(
                f"{entry['id']}  {'redriven' if entry['redriven'] else 'still failing: ' + str(entry['error'])}"
            )
        click.echo(f"redriven {payload['redriven']}, still failing {payload['failed']}")

    emit(data, as_json, human)
    if data["failed"]:
        raise CommandError(f"{data['failed']} dead letters still fail", exit_code=1)
