"""Requests and results of the read API, and the typed document model of a search projection.

Everything a caller types (``total>=10``, ``created_at:desc``) is parsed here into small frozen models,
so the builder only ever sees validated structure and never a string it could mistake for syntax.
"""

from __future__ import annotations

import keyword
import logging
import re
from decimal import Decimal
from typing import TYPE_CHECKING, Annotated, Any, Generic, Literal, NamedTuple, TypeVar

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, create_model

from projector.exceptions import ProjectorError

if TYPE_CHECKING:
    from projector.projection.base import DocumentProjection

logger = logging.getLogger(__name__)

MAX_LIMIT = 1000
MAX_TEXT_CHARS = 1000
MAX_CONDITIONS = 64

Operator = Literal["=", ">=", ">", "<=", "<"]
Direction = Literal["asc", "desc"]

_FIELD = r"(?P<field>[A-Za-z_][A-Za-z0-9_.\-]*)"
_CONDITION = re.compile(rf"^\s*{_FIELD}\s*(?P<op>>=|<=|=|>|<)(?P<value>.*)$", re.DOTALL)
_SORT = re.compile(rf"^\s*{_FIELD}\s*(?::\s*(?P<direction>[A-Za-z]+))?\s*$")


class QueryError(ProjectorError, ValueError):
    """The query itself is wrong (unknown field, bad value, foreign cursor): one line saying how to fix it."""


class SearchUnavailable(ProjectorError, RuntimeError):
    """OpenSearch could not answer (unreachable, missing alias, rejected request)."""


class Condition(BaseModel):
    """One ``--where`` clause: ``FIELD=VALUE`` or a range ``FIELD>=VALUE`` (``>``, ``<=``, ``<``)."""

    model_config = ConfigDict(frozen=True)

    field: str
    op: Operator
    value: str

    @classmethod
    def parse(cls, text: str | Condition) -> Condition:
        if isinstance(text, Condition):
            return text
        if not isinstance(text, str):
            raise QueryError(f"a condition is a string like 'status=PAID' or 'total>=10', got {text!r}")
        match = _CONDITION.match(text)
        if match is None:
            raise QueryError(
                f"cannot read condition {text!r}: write FIELD=VALUE or FIELD>=VALUE (also >, <=, <)"
            )
        value = match["value"].strip()
        if not value:
            raise QueryError(f"condition {text!r} has no value after {match['op']!r}")
        return cls(field=match["field"], op=match["op"], value=value)

    def __str__(self) -> str:
        return f"{self.field}{self.op}{self.value}"


class SortSpec(BaseModel):
    """``FIELD[:asc|desc]``; ``_score`` sorts by relevance."""

    model_config = ConfigDict(frozen=True)

    field: str
    direction: Direction = "asc"

    @classmethod
    def parse(cls, text: str | SortSpec) -> SortSpec:
        if isinstance(text, SortSpec):
            return text
        match = _SORT.match(text) if isinstance(text, str) else None
        if match is None:
            raise QueryError(f"cannot read sort {text!r}: write FIELD, FIELD:asc or FIELD:desc")
        direction = (match["direction"] or ("desc" if match["field"] == "_score" else "asc")).lower()
        if direction not in ("asc", "desc"):
            raise QueryError(f"sort direction must be asc or desc, got {match['direction']!r} in {text!r}")
        return cls(field=match["field"], direction=direction)

    def __str__(self) -> str:
        return f"{self.field}:{self.direction}"


class SearchRequest(BaseModel):
    """A validated search: free text, AND-ed conditions, one sort, a page size and where to resume."""

    model_config = ConfigDict(frozen=True)

    text: str | None = None
    where: tuple[Condition, ...] = ()
    sort: SortSpec | None = None
    limit: int = 20
    cursor: str | None = None

    @classmethod
    def of(
        cls,
        text: str | None = None,
        where: list[str | Condition] | tuple[str | Condition, ...] | None = None,
        sort: str | SortSpec | None = None,
        limit: int = 20,
        cursor: str | None = None,
    ) -> SearchRequest:
        """Parse caller input into a request, turning every problem into one QueryError."""
        if text is not None and not isinstance(text, str):
            raise QueryError(f"text must be a string, got {type(text).__name__}")
        text = (text or "").strip() or None
        if text is not None and len(text) > MAX_TEXT_CHARS:
            raise QueryError(f"text is {len(text)} characters long; at most {MAX_TEXT_CHARS} are searched")
        if isinstance(where, str | Condition):
            where = [where]
        conditions = tuple(Condition.parse(item) for item in (where or ()))
        if len(conditions) > MAX_CONDITIONS:
            raise QueryError(f"at most {MAX_CONDITIONS} conditions, got {len(conditions)}")
        if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_LIMIT:
            raise QueryError(f"limit must be an integer from 1 to {MAX_LIMIT}, got {limit!r}")
        return cls(
            text=text,
            where=conditions,
            sort=SortSpec.parse(sort) if sort else None,
            limit=limit,
            cursor=cursor or None,
        )


DocT = TypeVar("DocT", bound=BaseModel)


class SearchResult(BaseModel, Generic[DocT]):
    """One page: ``total`` matches the whole query, ``cursor`` resumes after the last hit (None: no more)."""

    total: int
    hits: list[DocT]
    cursor: str | None = None


class FacetCount(NamedTuple):
    """A value of a keyword field and how many matching documents carry it."""

    value: Any
    count: int  # type: ignore[assignment]  # shadows tuple.count: the documented (value, count) pair


# --- the document model -------------------------------------------------------------------------------

_NUMBER_TYPES = {"double", "float", "half_float", "scaled_float"}
_INTEGER_TYPES = {"long", "integer", "short", "byte", "unsigned_long"}


def _as_text(value: Any) -> Any:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float | Decimal):
        return str(value)
    return value


def _as_decimal(value: Any) -> Any:
    # JSON numbers arrive as floats; their shortest repr is the digits that were written (120.5, not
    # 120.4999...), so a document's amounts come back exactly as projected.
    if isinstance(value, float):
        return Decimal(repr(value))
    if isinstance(value, str):
        return Decimal(value.strip())
    return value


def _scalar(mapping: dict[str, Any], path: str) -> Any:
    kind = mapping.get("type")
    if kind in ("keyword", "text", "constant_keyword", "wildcard", "match_only_text"):
        return Annotated[str, BeforeValidator(_as_text)]
    if kind in _INTEGER_TYPES:
        return int
    if kind in _NUMBER_TYPES:
        return Annotated[Decimal, BeforeValidator(_as_decimal)]
    if kind in ("date", "date_nanos"):
        return Annotated[str, BeforeValidator(_as_text)]
    if kind == "boolean":
        return bool
    return Any


def _python_name(name: str, taken: set[str]) -> str:
    candidate = name
    if (
        not candidate.isidentifier()
        or keyword.iskeyword(candidate)
        or candidate.startswith("_")
        or hasattr(BaseModel, candidate)
    ):
        candidate = "f_" + re.sub(r"\W", "_", name.lstrip("_")) or "f_"
    while candidate in taken:
        candidate += "_"
    taken.add(candidate)
    return candidate


def _model_for(properties: dict[str, Any], model_name: str, path: str) -> type[BaseModel]:
    fields: dict[str, Any] = {}
    taken: set[str] = set()
    for name, mapping in sorted(properties.items()):
        dotted = f"{path}.{name}" if path else name
        if "properties" in mapping and mapping.get("type") in (None, "object", "nested"):
            inner: Any = _model_for(mapping["properties"], model_name + _camel(name), dotted)
        elif mapping.get("type") in ("object", "nested", "flat_object"):
            inner = dict[str, Any]
        else:
            inner = _scalar(mapping, dotted)
        annotation = inner if inner is Any else inner | list[inner] | None  # any field can hold an array
        fields[_python_name(name, taken)] = (annotation, Field(default=None, alias=name))
    return create_model(
        model_name,
        __config__=ConfigDict(extra="ignore", populate_by_name=True, frozen=True),
        **fields,
    )


def _camel(name: str) -> str:
    return "".join(part.capitalize() for part in re.split(r"[^A-Za-z0-9]+", name))


_MODELS: dict[tuple[str, str], type[BaseModel]] = {}


def document_model(projection: DocumentProjection) -> type[BaseModel]:
    """The pydantic model of one projection's documents, built once from its mapping.

    Fields are typed from the mapping (keyword/text/date → str, long → int, double → Decimal, boolean →
    bool, object → nested model); every field is optional and may be an array, as in OpenSearch.
    Unknown keys (such as the projector's own meta field) are ignored. Dump with ``by_alias=True``.
    """
    key = (projection.name, projection.definition_hash())
    model = _MODELS.get(key)
    if model is None:
        properties = projection.mappings.get("properties", {})
        model = _model_for(properties, f"{_camel(projection.name)}Document", "")
        _MODELS[key] = model
        logger.debug("built document model %s for projection %s", model.__name__, projection.name)
    return model
