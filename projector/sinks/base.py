"""Old home of the store contract, kept so callers written against it keep importing.

The interface is ``projector.stores.ProjectionStore``; ``Sink`` is only its former name.
"""

from __future__ import annotations

from projector.stores.base import ItemChanges, ProjectionStore, SinkResult

Sink = ProjectionStore

__all__ = ["ItemChanges", "ProjectionStore", "Sink", "SinkResult"]
