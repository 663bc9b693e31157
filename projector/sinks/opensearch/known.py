"""Stored states this process already knows, so a batch reads (``mget``) only the ids it does not.

A state is remembered per physical index *identity* (the index's uuid, never its name: a deleted and
re-created index of the same name starts empty and must be read again) after the index acknowledged it:
a write that landed, or a read. Another writer may since have stored a newer state, so a remembered
state is only used to build writes, which OpenSearch checks by their external version (a 409 makes the
writer forget it and read again). A remembered state never decides on its own that changes are stale:
an item whose fold from memory writes nothing is read and folded again. tests/unit/test_known_states.py
races two sinks with stale memories. Bounded: least recently used first out.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from projector.versioning import ItemState

logger = logging.getLogger(__name__)

DEFAULT_CAPACITY = 100_000  # about 42 MiB when full (item ids of 8 characters, stream positions)


class KnownStates:
    """item state by (index uuid, item id), bounded LRU; thread-safe."""

    def __init__(self, capacity: int = DEFAULT_CAPACITY) -> None:
        if capacity < 1:
            raise ValueError("capacity must be at least 1")
        self.capacity = capacity
        self._states: OrderedDict[tuple[str, str], ItemState] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._states)

    def get(self, identity: str, item_id: str) -> ItemState | None:
        key = (identity, item_id)
        with self._lock:
            state = self._states.get(key)
            if state is not None:
                self._states.move_to_end(key)
            return state

    def remember(self, identity: str, item_id: str, state: ItemState) -> None:
        key = (identity, item_id)
        with self._lock:
            self._states[key] = state
            self._states.move_to_end(key)
            while len(self._states) > self.capacity:
                self._states.popitem(last=False)

    def forget(self, identity: str, item_id: str) -> None:
        with self._lock:
            self._states.pop((identity, item_id), None)

    def clear(self) -> None:
        with self._lock:
            self._states.clear()


def identities(client: Any, targets: list[str], request_timeout: float) -> dict[str, str]:
    """The uuid of each physical index in ``targets`` (one request)."""
    response = client.indices.get_settings(
        index=",".join(targets), name="index.uuid", request_timeout=request_timeout
    )
    return {
        name: body["settings"]["index"]["uuid"]
        for name, body in response.items()
        if isinstance(body, dict) and "settings" in body
    }
