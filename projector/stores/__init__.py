"""Where projections keep their results: one store per projection kind, behind one interface."""

from projector.stores.base import ItemChanges, Layout, ProjectionStore, SinkResult

__all__ = ["ItemChanges", "Layout", "ProjectionStore", "SinkResult"]
