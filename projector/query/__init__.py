"""A typed, safe read API over the search projections (``projector search``).

User text is only ever a value to match, ``--where`` values are typed by the mapping, removed items are
never returned, and cursors page without duplicates or gaps.
"""

from __future__ import annotations

from projector.query.search import facets, pages, search, search_projection
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

__all__ = [
    "Condition",
    "FacetCount",
    "QueryError",
    "SearchRequest",
    "SearchResult",
    "SearchUnavailable",
    "SortSpec",
    "document_model",
    "facets",
    "pages",
    "search",
    "search_projection",
]
