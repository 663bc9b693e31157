"""The fold of one stream: pure, in version order, never skipping a version.

A document at version ``n`` is only ever advanced by version ``n+1``. Each step is the event at that
version, or ``None`` for an event this projection does not handle (an unknown type that is skipped):
the version still advances, the document does not change. A handler returning ``None`` ends the
document (a tombstone); later events advance the version of the tombstone and never revive it.

A step that is ``Rejected`` (an event that cannot be read) or whose handler fails is a rejected change
as everywhere else (``projector.projection.rendering``), but a stream cannot skip a version: the fold
stops there, and the event and the stream's later ones in the batch are dead-lettered.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from projector.projection.rendering import Rejected, guarded

if TYPE_CHECKING:
    from projector.events.projection import EventStreamProjection
    from projector.events.types import Event

logger = logging.getLogger(__name__)

Step = tuple[int, "Event[Any] | Rejected | None"]


@dataclass(frozen=True, slots=True)
class StreamState:
    """A stream's folded state: the version folded and the document (None: ended, a tombstone)."""

    version: int
    document: dict[str, Any] | None

    @property
    def ended(self) -> bool:
        return self.document is None


@dataclass(frozen=True, slots=True)
class FoldStop:
    """Why a fold stopped before the end: the version it could not apply and the reason."""

    version: int
    reason: str
    gap: bool = False


@dataclass(slots=True)
class FoldOutcome:
    """How far a fold got: the state after the last applied step, and why it stopped (if it did)."""

    state: StreamState | None
    applied: int = 0
    stop: FoldStop | None = None


def start(projection: EventStreamProjection, stream_id: str) -> StreamState:
    """The state before event 1."""
    return StreamState(0, dict(projection.initial(stream_id)))


def fold(
    projection: EventStreamProjection, stream_id: str, state: StreamState | None, steps: Sequence[Step]
) -> FoldOutcome:
    """Advance ``state`` (None: nothing folded yet) through ``steps`` (versions ascending, no repeats),
    up to a gap or a rejected step."""
    outcome = FoldOutcome(state=state)
    current = state or start(projection, stream_id)
    for version, event in steps:
        if version <= current.version:
            continue
        if version != current.version + 1:
            outcome.stop = FoldStop(current.version + 1, f"version {current.version + 1} missing", gap=True)
            break
        advanced = (
            event if isinstance(event, Rejected) else guarded(advance, projection, current, version, event)
        )
        if isinstance(advanced, Rejected):  # an event it cannot read or take, a projection bug: stop here
            logger.debug("%s: version %d rejected", projection.name, version)
            outcome.stop = FoldStop(version, advanced.reason)
            break
        current = advanced
        outcome.state = current
        outcome.applied += 1
    return outcome


def advance(
    projection: EventStreamProjection, state: StreamState, version: int, event: Event[Any] | None
) -> StreamState:
    """One step: the handler of the event's type on a copy of the document (the stored one stays)."""
    document = state.document
    if document is not None and event is not None:
        handler = projection.handler(event.type)
        if handler is not None:
            result = handler(_copy(document), event)
            if result is not None and not isinstance(result, dict):
                raise TypeError(f"a handler must return a dict or None, got {type(result).__name__}")
            document = result
    if document is not None and projection.version_field:
        document = {**document, projection.version_field: version}
    return StreamState(version, document)


def fold_all(projection: EventStreamProjection, stream_id: str, steps: Sequence[Step]) -> FoldOutcome:
    """The fold of a whole stream from its first event (verify, tests)."""
    return fold(projection, stream_id, None, steps)


def _copy(value: Any) -> Any:
    """A deep copy of a JSON-like document, so a handler mutating its input cannot touch stored state."""
    if isinstance(value, dict):
        return {key: _copy(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_copy(item) for item in value]
    return value
