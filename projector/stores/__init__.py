"""Where projections keep their results: one store per projection kind, behind one interface."""

from projector.stores.base import Layout, ProjectionStore

__all__ = ["Layout", "ProjectionStore"]
