"""Shared output and options for commands: one JSON document with --json, tables for people otherwise."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Sequence
from decimal import Decimal
from typing import TYPE_CHECKING, Any, TypeVar

import click

from projector.exceptions import ProjectorError

if TYPE_CHECKING:
    from click.decorators import FC  # what click's option decorators take and give back


class CommandError(ProjectorError):
    """A user-facing failure: printed as one line on stderr, with this exit code."""

    def __init__(self, message: str, exit_code: int = 2) -> None:
        super().__init__(message)
        self.exit_code = exit_code


json_option = click.option("--json", "as_json", is_flag=True, help="Print one JSON document on stdout.")
projection_option = click.option(
    "--projection",
    "projections",
    multiple=True,
    metavar="NAME",
    help="Only this projection (repeatable); default all.",
)


def segments_option(help: str) -> Callable[[FC], FC]:
    """``--segments``: the parallel scan workers over the source table (backfill, verify)."""
    return click.option("--segments", type=click.IntRange(1, 1000), default=4, show_default=True, help=help)


def _default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, set | frozenset):
        return sorted(value, key=str)
    if isinstance(value, bytes):
        return value.hex()
    return str(value)


def print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, default=_default, ensure_ascii=False) + "\n")


def console() -> Any:
    from rich.console import Console

    return Console()


def print_table(title: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    from rich.table import Table

    table = Table(title=title, show_lines=False)
    for column in columns:
        table.add_column(column)
    for row in rows:
        table.add_row(*["" if cell is None else str(cell) for cell in row])
    console().print(table)


Data = TypeVar("Data")


def emit(data: Data, as_json: bool, human: Callable[[Data], None]) -> None:
    """Print ``data`` as JSON or hand it to ``human`` for a terminal rendering."""
    if as_json:
        print_json(data)
    else:
        human(data)
