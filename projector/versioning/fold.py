"""Fold one item's changes from a batch into a single write, in stream order.

Coalescing is a fold, not "keep the last change": a delete followed by a re-creation inside one batch
must go through the same rules as if each change had been written on its own.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Generic, TypeVar

from projector.changes.types import Change, ChangeKind
from projector.versioning.exceptions import VersionError
from projector.versioning.schemes import VersionScheme
from projector.versioning.state import ItemState

logger = logging.getLogger(__name__)

Rendered = TypeVar("Rendered")


@dataclass(slots=True)
class FoldResult(Generic[Rendered]):
    """The outcome for one item: the state to write (None: nothing to write) and what became of each change."""

    state: ItemState | None
    output: Rendered | None = None
    last: Change | None = None
    applied: list[Change] = field(default_factory=list)
    stale: list[Change] = field(default_factory=list)
    poison: list[tuple[Change, str]] = field(default_factory=list)


def fold(
    scheme: VersionScheme,
    stored: ItemState | None,
    changes: Sequence[Change],
    render: Callable[[Change], Rendered],
    keep_expired: bool = False,
) -> FoldResult[Rendered]:
    """Advance ``stored`` through ``changes`` and render the projection output of the final state.

    ``render`` gets the change behind the final state (it is never called for a REMOVE). A change the
    version rules reject, or that ``render`` rejects, is reported as poison and the fold is redone
    without it, so one bad change never hides the good ones around it.
    """
    excluded: set[int] = set()
    rejected: list[tuple[Change, str]] = []
    while True:
        result = _advance_all(scheme, stored, changes, excluded, keep_expired)
        result.poison = sorted(result.poison + rejected, key=lambda entry: entry[0].batch_index)
        if result.state is None or result.last is None or result.state.deleted:
            return result
        try:
            result.output = render(_as_kept(result.last))
        except Exception as error:  # a projection bug or bad item: that record is poison, not the batch
            logger.debug(
                "projection rejected change at batch index %s: %s",
                result.last.batch_index,
                type(error).__name__,
            )
            rejected.append((result.last, f"projection failed: {type(error).__name__}: {error}"))
            excluded.add(id(result.last))
            continue
        return result


def _advance_all(
    scheme: VersionScheme,
    stored: ItemState | None,
    changes: Sequence[Change],
    excluded: set[int],
    keep_expired: bool,
) -> FoldResult:
    state = stored
    result: FoldResult = FoldResult(state=None)
    for change in changes:
        if id(change) in excluded:
            continue
        if keep_expired and change.expired:
            # The item stays as it was; the delete only tells where the kept state sits in the stream.
            placed = scheme.confirm(state, change)
            if placed is None:
                result.stale.append(change)
                continue
            state = placed
            result.last = change
            result.applied.append(change)
            continue
        try:
            advanced = scheme.advance(state, change)
        except VersionError as error:
            result.poison.append((change, str(error)))
            continue
        if advanced is None:
            result.stale.append(change)
            continue
        state = advanced
        result.last = change
        result.applied.append(change)
    result.state = state if result.last is not None else None
    return result


def _as_kept(change: Change) -> Change:
    """The change to render for the state it left: a kept TTL delete renders the image it deleted."""
    if change.kind is not ChangeKind.REMOVE:
        return change
    return replace(change, kind=ChangeKind.MODIFY, new_image=change.old_image)
