"""Find the projections: every module-level definition in the configured modules or packages."""

from __future__ import annotations

import importlib
import logging
import pkgutil
from dataclasses import dataclass, field
from types import ModuleType

from projector.config.exceptions import ConfigurationError
from projector.projection.base import AggregateProjection, DocumentProjection, Projection

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Registry:
    """The loaded projections, by kind and by name."""

    documents: tuple[DocumentProjection, ...] = ()
    aggregates: tuple[AggregateProjection, ...] = ()
    by_name: dict[str, Projection] = field(default_factory=dict)

    @property
    def all(self) -> tuple[Projection, ...]:
        return (*self.documents, *self.aggregates)

    def get(self, name: str) -> Projection:
        try:
            return self.by_name[name]
        except KeyError:
            raise ConfigurationError(
                f"no projection named {name!r}; known: {', '.join(sorted(self.by_name)) or 'none'}"
            ) from None

    def document(self, name: str) -> DocumentProjection:
        projection = self.get(name)
        if not isinstance(projection, DocumentProjection):
            known = ", ".join(p.name for p in self.documents)
            raise ConfigurationError(f"{name!r} is not a search projection; search projections: {known}")
        return projection

    def aggregate(self, name: str) -> AggregateProjection:
        projection = self.get(name)
        if not isinstance(projection, AggregateProjection):
            known = ", ".join(p.name for p in self.aggregates)
            raise ConfigurationError(f"{name!r} is not an aggregate projection; aggregates: {known}")
        return projection


def load_projections(modules: str) -> Registry:
    """Import each comma-separated module (a package: all its submodules) and collect its projections."""
    found: dict[str, Projection] = {}
    for name in [part.strip() for part in modules.split(",") if part.strip()]:
        for module in _import_tree(name):
            for value in vars(module).values():
                if not isinstance(value, Projection):
                    continue
                existing = found.get(value.name)
                if existing is not None and existing is not value:
                    raise ConfigurationError(
                        f"two projections are named {value.name!r} (in {module.__name__})"
                    )
                found[value.name] = value
    if not found:
        raise ConfigurationError(f"no projections found in PROJECTOR_PROJECTIONS={modules!r}")
    documents = tuple(p for p in found.values() if isinstance(p, DocumentProjection))
    aggregates = tuple(p for p in found.values() if isinstance(p, AggregateProjection))
    logger.debug("loaded projections: %s", ", ".join(sorted(found)))
    return Registry(documents=documents, aggregates=aggregates, by_name=dict(found))


def _import_tree(name: str) -> list[ModuleType]:
    try:
        module = importlib.import_module(name)
    except ImportError as error:
        raise ConfigurationError(f"cannot import projections module {name!r}: {error}") from None
    modules = [module]
    for info in pkgutil.iter_modules(getattr(module, "__path__", []), prefix=f"{name}."):
        if not info.name.rsplit(".", 1)[-1].startswith("_"):
            submodule = importlib.import_module(info.name)
            # events hook: a module over another source table (an events table) is loaded only by name
            if not getattr(submodule, "PROJECTOR_LOAD_EXPLICITLY", False):
                modules.append(submodule)
    return modules
