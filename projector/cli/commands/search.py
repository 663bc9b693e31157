"""`projector search INDEX [TEXT]`: query a search projection, page with cursors, count facets."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import click

from projector.cli.output import CommandError, emit, json_option

if TYPE_CHECKING:
    from projector.projection.base import DocumentProjection

logger = logging.getLogger(__name__)

CELL_CHARS = 40
_SCALAR_TYPES = {
    "keyword",
    "constant_keyword",
    "text",
    "match_only_text",
    "long",
    "integer",
    "short",
    "byte",
    "unsigned_long",
    "double",
    "float",
    "half_float",
    "scaled_float",
    "date",
    "date_nanos",
    "boolean",
}


@click.command("search")
@click.argument("index")
@click.argument("text", nargs=-1)
@click.option(
    "--where",
    "where",
    multiple=True,
    metavar="COND",
    help="FIELD=VALUE, or a range FIELD>=VALUE (also >, <=, <) on numbers and dates; repeat to AND.",
)
@click.option(
    "--sort", metavar="FIELD[:asc|desc]", help="Order of hits; default relevance with TEXT, else the key."
)
@click.option("--limit", default="20", metavar="N", show_default=True, help="Hits per page, 1 to 1000.")
@click.option("--cursor", metavar="C", help="The cursor a previous page printed, to get the next page.")
@click.option(
    "--facet",
    "facet_fields",
    multiple=True,
    metavar="FIELD",
    help="Count matching documents per value of a keyword field instead of listing hits.",
)
@click.option("--facet-size", default="10", metavar="N", show_default=True, help="Values per facet.")
@json_option
def command(
    index: str,
    text: tuple[str, ...],
    where: tuple[str, ...],
    sort: str | None,
    limit: str,
    cursor: str | None,
    facet_fields: tuple[str, ...],
    facet_size: str,
    as_json: bool,
) -> None:
    """Search the projection INDEX (e.g. orders) for TEXT, with filters, sort and paging.

    TEXT is matched as plain words over the projection's text fields: quotes, colons, OR and * are
    searched for literally, never interpreted. --json prints {"total", "hits", "cursor"}; pass the
    cursor back with --cursor for the next page.
    """
    from projector.query import QueryError, SearchUnavailable, facets, search, search_projection
    from projector.runtime import Runtime

    _quiet_client_logs()
    runtime = Runtime()
    words = " ".join(text) or None
    try:
        projection = search_projection(runtime.settings, index, runtime.registry)
        if facet_fields:
            size = _integer("--facet-size", facet_size)
            counts = {
                name: facets(
                    runtime.opensearch,
                    runtime.settings,
                    projection,
                    name,
                    text=words,
                    where=list(where),
                    size=size,
                )
                for name in facet_fields
            }
            emit(
                {
                    "facets": {
                        name: [{"value": value, "count": count} for value, count in found]
                        for name, found in counts.items()
                    }
                },
                as_json,
                _print_facets,
            )
            return
        result = search(
            runtime.opensearch,
            runtime.settings,
            projection,
            text=words,
            where=list(where),
            sort=sort,
            limit=_integer("--limit", limit),
            cursor=cursor,
        )
    except QueryError as error:
        raise CommandError(str(error), exit_code=2) from None
    except SearchUnavailable as error:
        raise CommandError(str(error), exit_code=1) from None
    data = {
        "total": result.total,
        "hits": [hit.model_dump(mode="python", by_alias=True, exclude_unset=True) for hit in result.hits],
        "cursor": result.cursor,
    }
    emit(data, as_json, lambda page: _print_page(projection, page))


def _quiet_client_logs() -> None:
    """opensearch-py logs every failed request as a warning with a traceback; the error line says it all."""
    root = click.get_current_context().find_root()
    if not root.params.get("verbose"):
        logging.getLogger("opensearch").setLevel(logging.ERROR)


def _integer(option: str, raw: str) -> int:
    try:
        return int(raw)
    except ValueError:
        raise CommandError(f"{option} must be an integer from 1 to 1000, got {raw!r}") from None


def _columns(projection: DocumentProjection) -> list[str]:
    """Key attributes first, then every other top-level scalar field in mapping order."""
    properties = projection.mappings["properties"]
    scalars = [
        name
        for name, mapping in properties.items()
        if "properties" not in mapping and mapping.get("type") in _SCALAR_TYPES
    ]
    keys = [name for name in projection.key_attributes if name in scalars]
    return keys + [name for name in scalars if name not in keys]


def _cell(value: Any) -> str:
    if value is None:
        return ""
    text = ", ".join(str(part) for part in value) if isinstance(value, list) else str(value)
    text = " ".join(text.split())
    return text if len(text) <= CELL_CHARS else text[: CELL_CHARS - 1] + "…"


def _print_page(projection: DocumentProjection, page: dict[str, Any]) -> None:
    from projector.cli.output import print_table

    columns = _columns(projection)
    rows = [[_cell(hit.get(name)) for name in columns] for hit in page["hits"]]
    total = page["total"]
    print_table(f"{projection.name}: {total} match{'es' if total != 1 else ''}", columns, rows)
    click.echo(f"{len(rows)} shown of {total}")
    if page["cursor"]:
        click.echo(f"next page: add --cursor {page['cursor']}")


def _print_facets(data: dict[str, Any]) -> None:
    from projector.cli.output import print_table

    for name, counts in data["facets"].items():
        print_table(f"{name}", ["value", "count"], [[entry["value"], entry["count"]] for entry in counts])
