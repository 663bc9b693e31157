"""Turn a validated request into OpenSearch query DSL: pure, no client, unit-tested on its own.

Two rules make it safe to expose to people typing into a terminal or a web form:

- free text only ever becomes the *value* of a ``match``-family query (never ``query_string`` nor
  ``simple_query_string``), so ``status:PAID OR *`` searches for those words, not for an expression;
- a ``--where`` value is parsed by the field's mapped type before it reaches the DSL, so ``total=abc``
  is a clear error here rather than a 400 from the server, and ``now-1d`` is not date math.

Every query carries ``<meta>.visible: true`` as a filter: the read alias already hides removed
documents, this guards a query that reaches a physical index by mistake.
"""

from __future__ import annotations

import calendar
import json
import logging
import math
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any

from projector.query.types import MAX_LIMIT, Condition, QueryError, SearchRequest, SortSpec

if TYPE_CHECKING:
    from projector.projection.base import DocumentProjection

logger = logging.getLogger(__name__)

SCORE = "_score"
MATCH_SCORE = 1.0  # every word occurs somewhere in the text fields
FIELD_SCORE = 2.0  # ... and all of them in this one field
PHRASE_SCORE = 4.0  # ... as this exact phrase
DATE_FORMAT = "strict_date_optional_time"

_KEYWORD_TYPES = {"keyword", "constant_keyword"}
_INTEGER_TYPES = {"long", "integer", "short", "byte", "unsigned_long"}
_DECIMAL_TYPES = {"double", "float", "half_float", "scaled_float"}
_DATE_TYPES = {"date", "date_nanos"}
_TEXT_TYPES = {"text", "match_only_text"}
_INTEGER = re.compile(r"^[+-]?\d{1,20}$")
_PERIOD = re.compile(r"^(?P<year>\d{4})(?:-(?P<month>\d{2})(?:-(?P<day>\d{2}))?)?$")


@dataclass(frozen=True)
class FieldInfo:
    """A leaf field as users name it, and how to query it."""

    path: str
    type: str
    target: str  # the indexed field to filter, sort or facet on (a keyword subfield for text)
    nested: str | None = None  # the innermost ``nested`` ancestor, if any

    @property
    def kind(self) -> str:
        if self.type in _KEYWORD_TYPES or (self.type in _TEXT_TYPES and self.target != self.path):
            return "keyword"
        if self.type in _INTEGER_TYPES:
            return "integer"
        if self.type in _DECIMAL_TYPES:
            return "decimal"
        if self.type in _DATE_TYPES:
            return "date"
        if self.type == "boolean":
            return "boolean"
        if self.type in _TEXT_TYPES:
            return "text"
        return "other"

    @property
    def exact(self) -> bool:
        return self.kind in ("keyword", "integer", "decimal", "date", "boolean")

    @property
    def ordered(self) -> bool:
        return self.kind in ("integer", "decimal", "date")


@dataclass(frozen=True)
class Schema:
    """The leaf fields of a projection's mapping, by dotted path."""

    fields: dict[str, FieldInfo]

    @classmethod
    def of(cls, projection: DocumentProjection) -> Schema:
        found: dict[str, FieldInfo] = {}
        _walk(projection.mappings.get("properties", {}), "", None, found)
        return cls(found)

    def filterable(self) -> list[str]:
        return sorted(path for path, info in self.fields.items() if info.exact)

    def resolve(self, name: str, purpose: str) -> FieldInfo:
        info = self.fields.get(name)
        if info is None:
            raise QueryError(f"unknown field {name!r} for {purpose}; fields: {', '.join(self.filterable())}")
        return info


def _walk(properties: dict[str, Any], prefix: str, nested: str | None, found: dict[str, FieldInfo]) -> None:
    for name, mapping in properties.items():
        path = f"{prefix}{name}"
        kind = mapping.get("type", "object")
        if "properties" in mapping:
            _walk(mapping["properties"], f"{path}.", path if kind == "nested" else nested, found)
            continue
        target = path
        if kind in _TEXT_TYPES:
            for sub, sub_mapping in (mapping.get("fields") or {}).items():
                if sub_mapping.get("type") == "keyword":
                    target = f"{path}.{sub}"
                    break
        found[path] = FieldInfo(path=path, type=kind, target=target, nested=nested)


@dataclass(frozen=True)
class Plan:
    """What the executor sends, plus what a cursor must agree with."""

    body: dict[str, Any]
    sort_keys: tuple[str, ...]
    identity: dict[str, Any] = field(default_factory=dict)  # canonical query, hashed into cursors


# --- values -----------------------------------------------------------------------------------------


def typed_value(info: FieldInfo, raw: str) -> Any:
    """The JSON value of ``raw`` for this field, or a QueryError saying what the field expects."""
    kind = info.kind
    if kind == "keyword":
        return raw
    if kind == "integer":
        if not _INTEGER.match(raw):
            raise QueryError(f"{info.path} is an integer field ({info.type}): {raw!r} is not an integer")
        return int(raw)
    if kind == "decimal":
        expects = f"{info.path} is a number field ({info.type}): {raw!r} is not"
        try:
            number = Decimal(raw)
        except InvalidOperation:
            raise QueryError(f"{expects} a number") from None
        if not number.is_finite() or not math.isfinite(float(number)):
            raise QueryError(f"{expects} a finite number")
        return float(number)
    if kind == "boolean":
        lowered = raw.lower()
        if lowered not in ("true", "false"):
            raise QueryError(f"{info.path} is a boolean field: write true or false, not {raw!r}")
        return lowered == "true"
    if kind == "text":
        raise QueryError(
            f"{info.path} is a full-text field with no keyword subfield: search its words as TEXT, "
            f"not with --where"
        )
    raise QueryError(f"{info.path} has type {info.type!r}, which cannot be filtered")


def date_bounds(info: FieldInfo, raw: str) -> tuple[datetime, datetime, bool]:
    """``(start, end, period)``: a day, month or year is the period [start, end); an instant is [t, t]."""
    period = _PERIOD.match(raw)
    try:
        if period:
            year, month, day = int(period["year"]), int(period["month"] or 1), int(period["day"] or 1)
            start = datetime(year, month, day, tzinfo=UTC)
            if period["day"]:
                end = start + timedelta(days=1)
            elif period["month"]:
                end = start + timedelta(days=calendar.monthrange(year, month)[1])
            else:
                end = datetime(year + 1, 1, 1, tzinfo=UTC)
            return start, end, True
        moment = datetime.fromisoformat(raw)
    except (ValueError, OverflowError):
        raise QueryError(
            f"{info.path} is a date field: {raw!r} is not an ISO-8601 date or time "
            f"(e.g. 2026-01-01 or 2026-01-01T12:00:00Z)"
        ) from None
    moment = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    return moment, moment, False


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def condition_clause(schema: Schema, condition: Condition) -> dict[str, Any]:
    """The filter clause of one condition, wrapped in ``nested`` when the field lives in nested objects."""
    info = schema.resolve(condition.field, "--where")
    if info.kind == "text" and condition.op == "=":
        typed_value(info, condition.value)  # raises the "search it as TEXT" error
    if condition.op != "=" and not info.ordered:
        raise QueryError(
            f"{condition}: ranges (>=, >, <=, <) work on number and date fields; {info.path} is {info.type}"
        )
    if info.kind == "date":
        clause = _date_clause(info, condition)
    elif condition.op == "=":
        clause = {"term": {info.target: typed_value(info, condition.value)}}
    else:
        bound = {">=": "gte", ">": "gt", "<=": "lte", "<": "lt"}[condition.op]
        clause = {"range": {info.target: {bound: typed_value(info, condition.value)}}}
    return _in(info.nested, clause)


def _date_clause(info: FieldInfo, condition: Condition) -> dict[str, Any]:
    start, end, period = date_bounds(info, condition.value)
    low, high = ("gte", "lt") if period else ("gte", "lte")
    bounds = {
        "=": {low: _iso(start), high: _iso(end)},
        ">=": {"gte": _iso(start)},
        ">": {"gte": _iso(end)} if period else {"gt": _iso(end)},
        "<": {"lt": _iso(start)},
        "<=": {high: _iso(end)},
    }[condition.op]
    return {"range": {info.target: {**bounds, "format": DATE_FORMAT}}}


# --- text -------------------------------------------------------------------------------------------


def text_clause(projection: DocumentProjection, schema: Schema, text: str) -> dict[str, Any]:
    """All words must occur across the text fields; the score says how closely a document matches.

    ``cross_fields`` with ``operator: and`` treats the text fields as one: "blue mug gift" finds an
    order whose item says "blue mug" and whose note says "gift". Text inside nested objects is
    matched per nested path and the groups are OR-ed.

    The score is built from constant scores only: a match, plus a bonus per field holding every word,
    plus a larger one per field holding the exact phrase. It depends on the document alone, never on
    index statistics, so a page boundary cannot move while other documents are written: BM25 scores
    shift with every write (document frequencies count updated copies until merges), and paging
    1,000 BM25-ranked orders during updates returned hundreds of them twice.
    """
    if not projection.text_fields:
        raise QueryError(f"{projection.name} has no full-text fields; filter it with --where instead")
    groups: dict[str | None, list[str]] = {}
    for name in projection.text_fields:
        info = schema.fields.get(name)
        groups.setdefault(info.nested if info else None, []).append(name)
    required: list[dict[str, Any]] = []
    bonuses: list[dict[str, Any]] = []
    for nested, fields in groups.items():
        words = {"multi_match": {"query": text, "fields": fields, "type": "cross_fields", "operator": "and"}}
        required.append(_in(nested, _constant(words, MATCH_SCORE)))
        for name in fields:
            every_word = {"match": {name: {"query": text, "operator": "and"}}}
            bonuses.append(_in(nested, _constant(every_word, FIELD_SCORE)))
            bonuses.append(_in(nested, _constant({"match_phrase": {name: {"query": text}}}, PHRASE_SCORE)))
    match = required[0] if len(required) == 1 else {"bool": {"should": required, "minimum_should_match": 1}}
    return {"bool": {"must": [match], "should": bonuses}}


def _constant(query: dict[str, Any], score: float) -> dict[str, Any]:
    return {"constant_score": {"filter": query, "boost": score}}


def _in(nested: str | None, query: dict[str, Any]) -> dict[str, Any]:
    if nested is None:
        return query
    return {"nested": {"path": nested, "query": query, "score_mode": "max"}}


# --- sort -------------------------------------------------------------------------------------------


def tiebreak_fields(projection: DocumentProjection, schema: Schema) -> list[FieldInfo]:
    """The key attributes, which together are unique per document: they make ``search_after`` exact."""
    keys: list[FieldInfo] = []
    for name in projection.key_attributes:
        info = schema.fields.get(name)
        if info is None or not info.exact or info.nested is not None or info.kind == "boolean":
            raise QueryError(
                f"{projection.name}: key attribute {name!r} must be mapped as keyword, number or date "
                f"for stable paging"
            )
        keys.append(info)
    return keys


def sort_clauses(
    projection: DocumentProjection, schema: Schema, sort: SortSpec | None, has_text: bool
) -> tuple[list[Any], tuple[str, ...]]:
    """The sort list (chosen order, then the unique key) and the names of its keys, in order."""
    clauses: list[Any] = []
    keys: list[str] = []
    if sort is None and has_text:
        sort = SortSpec(field=SCORE, direction="desc")
    if sort is not None and sort.field == SCORE:
        if not has_text:
            raise QueryError("sorting by relevance (_score) needs search TEXT")
        clauses.append({SCORE: {"order": sort.direction}})
        keys.append(SCORE)
    elif sort is not None:
        info = schema.fields.get(sort.field)
        if info is None:
            sortable = sorted(p for p, i in schema.fields.items() if i.exact and i.nested is None)
            raise QueryError(f"unknown field {sort.field!r} for --sort; fields: {', '.join(sortable)}")
        if not info.exact:
            raise QueryError(f"cannot sort on full-text field {info.path}; sort on a keyword, number or date")
        if info.nested is not None:
            raise QueryError(f"cannot sort on {info.path}: it lives inside nested objects ({info.nested})")
        clauses.append({info.target: {"order": sort.direction, "missing": "_last"}})
        keys.append(info.target)
    for info in tiebreak_fields(projection, schema):
        if info.target not in keys:
            clauses.append({info.target: {"order": "asc"}})
            keys.append(info.target)
    return clauses, tuple(keys)


# --- whole requests ---------------------------------------------------------------------------------


def _query(
    projection: DocumentProjection, schema: Schema, request: SearchRequest, meta_field: str
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    filters = [condition_clause(schema, condition) for condition in request.where]
    boolean: dict[str, Any] = {"filter": [{"term": {f"{meta_field}.visible": True}}, *filters]}
    if request.text:
        boolean["must"] = [text_clause(projection, schema, request.text)]
    return {"bool": boolean}, filters


def build_search(projection: DocumentProjection, request: SearchRequest, meta_field: str) -> Plan:
    """The ``_search`` body for one page (``size`` is one more than the limit, to know if more exist)."""
    schema = Schema.of(projection)
    query, filters = _query(projection, schema, request, meta_field)
    sort, keys = sort_clauses(projection, schema, request.sort, bool(request.text))
    body = {
        "query": query,
        "sort": sort,
        "size": request.limit + 1,
        "track_total_hits": True,
        "_source": {"excludes": [meta_field]},
    }
    identity = {
        "projection": projection.name,
        "definition": projection.definition_hash(),
        "text": request.text,
        "where": sorted(json.dumps(clause, sort_keys=True) for clause in filters),
        "sort": sort,
    }
    return Plan(body=body, sort_keys=keys, identity=identity)


def build_facet(
    projection: DocumentProjection, field_name: str, request: SearchRequest, meta_field: str, size: int
) -> dict[str, Any]:
    """A ``size: 0`` search with a terms aggregation counting matching documents per value."""
    if isinstance(size, bool) or not isinstance(size, int) or not 1 <= size <= MAX_LIMIT:
        raise QueryError(f"facet size must be an integer from 1 to {MAX_LIMIT}, got {size!r}")
    schema = Schema.of(projection)
    info = schema.fields.get(field_name)
    keywords = ", ".join(sorted(p for p, i in schema.fields.items() if i.kind == "keyword"))
    if info is None:
        raise QueryError(f"unknown field {field_name!r} for --facet; keyword fields: {keywords}")
    if info.kind != "keyword":
        raise QueryError(
            f"cannot facet on {info.path} ({info.type}): facets count keyword fields: {keywords}"
        )
    query, _ = _query(projection, schema, request, meta_field)
    terms: dict[str, Any] = {
        "field": info.target,
        "size": size,
        "order": [{"_count": "desc"}, {"_key": "asc"}],
    }
    if info.nested is None:
        aggs = {"facet": {"terms": terms}}
    else:
        # count documents, not nested objects: each bucket climbs back to its root documents
        terms["order"] = [{"documents": "desc"}, {"_key": "asc"}]
        aggs = {
            "facet": {
                "nested": {"path": info.nested},
                "aggs": {"values": {"terms": terms, "aggs": {"documents": {"reverse_nested": {}}}}},
            }
        }
    return {"query": query, "size": 0, "track_total_hits": True, "aggs": aggs}
