"""Run searches and facet counts against a projection's read alias.

Reads always go through the read alias (``{prefix}{name}``), whose filter hides removed documents, and
the query repeats that filter, so a removed item is neither returned nor counted. Pages are joined
with ``search_after`` on the chosen order plus the projection's key, which is unique: no duplicate and
no gap between pages, even while other fields of the documents change.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from opensearchpy.exceptions import ConnectionError as OpenSearchConnectionError
from opensearchpy.exceptions import NotFoundError, TransportError
from pydantic import BaseModel, ValidationError

from projector.projection.base import DocumentProjection
from projector.query import cursor as cursors
from projector.query.builder import build_facet, build_search
from projector.query.types import (
    Condition,
    FacetCount,
    QueryError,
    SearchRequest,
    SearchResult,
    SearchUnavailable,
    SortSpec,
    document_model,
)
from projector.sinks.opensearch.indexes import names
from projector.sinks.opensearch.types import META_FIELD

if TYPE_CHECKING:
    from opensearchpy import OpenSearch

    from projector.config.settings import Settings
    from projector.projection.registry import Registry

logger = logging.getLogger(__name__)

Where = list[str | Condition] | tuple[str | Condition, ...] | str | None


def search_projection(
    settings: Settings, projection: DocumentProjection | str, registry: Registry | None = None
) -> DocumentProjection:
    """The document projection named ``projection`` (or the one given), else a QueryError listing them."""
    if isinstance(projection, DocumentProjection):
        return projection
    if registry is None:
        from projector.projection.registry import load_projections

        registry = load_projections(settings.projections)
    found = registry.by_name.get(projection)
    if not isinstance(found, DocumentProjection):
        known = ", ".join(sorted(p.name for p in registry.documents)) or "none"
        what = "is not a search projection" if found is not None else "is not a projection"
        raise QueryError(f"{projection!r} {what}; search projections: {known}")
    return found


def search(
    client: OpenSearch,
    settings: Settings,
    projection: DocumentProjection | str,
    text: str | None = None,
    where: Where = None,
    sort: str | SortSpec | None = None,
    limit: int = 20,
    cursor: str | None = None,
) -> SearchResult[Any]:
    """One page of a projection's visible documents.

    Args:
        text: free text, matched as words over the projection's text fields (never parsed as syntax).
        where: conditions ``FIELD=VALUE`` / ``FIELD>=VALUE`` (``>``, ``<=``, ``<``), all required.
        sort: ``FIELD[:asc|desc]`` or ``_score``; default relevance with text, else the key.
        limit: page size, 1 to 1000.
        cursor: the ``cursor`` of the previous page of the same query.

    Returns:
        ``SearchResult`` with ``total`` (all matches), ``hits`` (typed documents, see
        ``document_model``) and ``cursor`` (None on the last page).

    Raises:
        QueryError: the query is wrong (unknown field, bad value, foreign cursor).
        SearchUnavailable: OpenSearch did not answer it.
    """
    chosen = search_projection(settings, projection)
    request = SearchRequest.of(text=text, where=_listed(where), sort=sort, limit=limit, cursor=cursor)
    plan = build_search(chosen, request, META_FIELD)
    query_fingerprint = cursors.fingerprint(plan.identity)
    body = dict(plan.body)
    if request.cursor:
        body["search_after"] = cursors.decode(request.cursor, query_fingerprint, plan.sort_keys)
    response = _search(client, settings, names(chosen, settings.index_prefix).read_alias, body)
    hits = response["hits"]["hits"]
    page = hits[: request.limit]
    model = document_model(chosen)
    next_cursor = cursors.encode(page[-1]["sort"], query_fingerprint) if len(hits) > request.limit else None
    return SearchResult[model](  # type: ignore[valid-type]
        total=_total(response),
        hits=[_document(model, hit) for hit in page],
        cursor=next_cursor,
    )


def pages(
    client: OpenSearch,
    settings: Settings,
    projection: DocumentProjection | str,
    text: str | None = None,
    where: Where = None,
    sort: str | SortSpec | None = None,
    limit: int = 100,
) -> Iterator[SearchResult[Any]]:
    """Every page of a query, following cursors until the last one."""
    cursor: str | None = None
    while True:
        page = search(
            client, settings, projection, text=text, where=where, sort=sort, limit=limit, cursor=cursor
        )
        yield page
        if page.cursor is None:
            return
        cursor = page.cursor


def facets(
    client: OpenSearch,
    settings: Settings,
    projection: DocumentProjection | str,
    field: str,
    text: str | None = None,
    where: Where = None,
    size: int = 10,
) -> list[FacetCount]:
    """The ``size`` most frequent values of a keyword field among matching documents, with their counts.

    Each ``FacetCount`` is a ``(value, count)`` tuple, most frequent first (ties by value). Counts are
    documents, not values: an order with two items of the same SKU counts once for that SKU.
    """
    chosen = search_projection(settings, projection)
    request = SearchRequest.of(text=text, where=_listed(where))
    body = build_facet(chosen, field, request, META_FIELD, size)
    response = _search(client, settings, names(chosen, settings.index_prefix).read_alias, body)
    aggregation = response["aggregations"]["facet"]
    if "values" in aggregation:  # nested: count the root documents each value climbs back to
        return [
            FacetCount(bucket["key"], bucket["documents"]["doc_count"])
            for bucket in aggregation["values"]["buckets"]
        ]
    return [FacetCount(bucket["key"], bucket["doc_count"]) for bucket in aggregation["buckets"]]


def _listed(where: Where) -> list[str | Condition]:
    if where is None:
        return []
    if isinstance(where, str | Condition):
        return [where]
    return list(where)


def _search(client: OpenSearch, settings: Settings, alias: str, body: dict[str, Any]) -> dict[str, Any]:
    logger.debug("search %s: %s", alias, body)
    try:
        found: dict[str, Any] = client.search(index=alias, body=body)
        return found
    except NotFoundError:
        raise SearchUnavailable(f"{alias} does not exist: run `projector setup` first") from None
    except OpenSearchConnectionError as error:
        url = settings.opensearch_url
        raise SearchUnavailable(f"cannot reach OpenSearch at {url}: {_cause(error)}") from None
    except TransportError as error:
        raise SearchUnavailable(f"OpenSearch refused the search of {alias}: {_reason(error)}") from None


def _cause(error: OpenSearchConnectionError) -> str:
    cause: BaseException = error.info if isinstance(error.info, BaseException) else error
    while (deeper := cause.__cause__ or cause.__context__) is not None:
        cause = deeper
    return (cause.strerror if isinstance(cause, OSError) else None) or str(cause)


def _reason(error: TransportError) -> str:
    info = error.info if isinstance(error.info, dict) else {}
    detail = info.get("error", {})
    if isinstance(detail, dict):
        root = (detail.get("root_cause") or [detail])[0]
        return f"{root.get('type', error.error)}: {root.get('reason', '')}".strip(": ")
    return f"{error.status_code} {error.error}"


def _total(response: dict[str, Any]) -> int:
    total = response["hits"]["total"]
    return int(total["value"] if isinstance(total, dict) else total)


def _document(model: type[BaseModel], hit: dict[str, Any]) -> BaseModel:
    source = {key: value for key, value in (hit.get("_source") or {}).items() if key != META_FIELD}
    try:
        return model.model_validate(source)
    except ValidationError as error:
        problem = error.errors()[0]
        where = ".".join(str(part) for part in problem["loc"])
        raise QueryError(
            f"document {hit.get('_id')!r} does not fit its mapping at {where}: {problem['msg']}"
        ) from None
