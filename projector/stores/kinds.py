"""Which store holds a projection, and which check verifies it: one entry per projection kind.

A projection's class names its kind (``DocumentProjection.kind == "document"`` and so on). Adding a kind
of projection means one store module (and its verify check) plus one line here. Entries are
``module:name`` strings, imported on first use, so a process that needs only DynamoDB never imports
opensearch-py, and this layer never imports verify (the layer above it) at import time.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from projector.config.exceptions import ConfigurationError

if TYPE_CHECKING:
    from projector.projection.base import Projection
    from projector.stores.base import Connections, ProjectionStore


@dataclass(frozen=True, slots=True)
class StoreKind:
    """How to open the store of one projection kind and which class verifies its projections."""

    store: str  # "module:Class" of the ``ProjectionStore``; ``Class.open(connections)`` makes one
    check: str  # "module:Class" of projector.verify: compares a projection with the source, repairs it


KINDS: dict[str, StoreKind] = {
    "document": StoreKind(
        "projector.stores.search:SearchDocumentStore", "projector.verify.opensearch:DocumentCheck"
    ),
    "aggregate": StoreKind(
        "projector.stores.aggregates:AggregateStore", "projector.verify.aggregates:GroupCheck"
    ),
    "event_stream": StoreKind(
        "projector.stores.events:EventStreamStore", "projector.events.verify:StreamCheck"
    ),
}


def kind_of(projection: Projection) -> str:
    """The projection's kind as its class declares it."""
    kind = getattr(projection, "kind", None)
    if kind not in KINDS:
        raise ConfigurationError(
            f"{projection.name}: no store for projections of kind {kind!r}; known: {', '.join(KINDS)}"
        )
    return str(kind)


def store_class(projection: Projection) -> type[ProjectionStore[Any]]:
    """The store class of ``projection``'s kind (for what needs no connection: ``preview``)."""
    found: type[ProjectionStore[Any]] = _load(KINDS[kind_of(projection)].store)
    return found


def open_store(kind: str, connections: Connections) -> ProjectionStore[Any]:
    """A new store of ``kind`` over ``connections``."""
    found: type[ProjectionStore[Any]] = _load(KINDS[kind].store)
    return found.open(connections)


def check_class(projection: Projection) -> Any:
    """The verify check class of ``projection``'s kind (called by projector.verify only)."""
    return _load(KINDS[kind_of(projection)].check)


def _load(reference: str) -> Any:
    module, _, name = reference.partition(":")
    return getattr(importlib.import_module(module), name)
