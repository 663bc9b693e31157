"""Fold one item's changes from a batch into a single write, in stream order, in one pass.

Coalescing is a fold, not "keep the last change": a delete followed by a re-creation inside one batch
must go through the same rules as if each change had been written on its own.

Only the final state is rendered (the states before it are superseded). When its rendering answers
``Rejected``, the change behind it is poison and the pass goes back to the last accepted state, the
state before that change, and on through the changes after it: they were judged against a state that
is gone (a record stale against the rejected change may be newer than the state before it). The result
is the fold of the batch without the rejected changes, as if they had never arrived.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from enum import Enum
from typing import Generic, TypeVar

from projector.changes.types import Change, ChangeKind
from projector.projection.rendering import Rejected, guarded
from projector.versioning.exceptions import VersionError
from projector.versioning.schemes import VersionScheme
from projector.versioning.state import ItemState

logger = logging.getLogger(__name__)

Output = TypeVar("Output")


@dataclass(slots=True)
class FoldResult(Generic[Output]):
    """The outcome for one item: the state to write (None: nothing to write) and what became of each change."""

    state: ItemState | None
    output: Output | None = None
    last: Change | None = None
    applied: list[Change] = field(default_factory=list)
    stale: list[Change] = field(default_factory=list)
    poison: list[tuple[Change, str]] = field(default_factory=list)


def fold(
    scheme: VersionScheme,
    stored: ItemState | None,
    changes: Sequence[Change],
    render: Callable[[Change], Output | Rejected],
    keep_expired: bool = False,
) -> FoldResult[Output]:
    """Advance ``stored`` through ``changes`` and render the change behind the final state.

    ``render`` is never called for a deleted final state (its output is None). A change the version
    rules cannot order, or whose rendering is ``Rejected`` (or raises), is poison; see the module doc.
    """

    def live(state: ItemState, change: Change) -> Output | Rejected | None:
        return None if state.deleted else render(change)

    return fold_write(scheme, stored, changes, live, keep_expired)


def fold_write(
    scheme: VersionScheme,
    stored: ItemState | None,
    changes: Sequence[Change],
    write: Callable[[ItemState, Change], Output | Rejected | None],
    keep_expired: bool = False,
) -> FoldResult[Output]:
    """``fold`` for a store: ``write(state, change)`` answers what to store for the final state, live or
    deleted (``change`` is the change behind it, a kept TTL delete as the image it deleted), or
    ``Rejected`` when the store cannot hold it: then that change is poison like any other rejection."""
    walk = _Walk(scheme, changes, keep_expired)
    state = walk.forward(stored, 0)
    while state is not None and walk.accepted:
        index, before = walk.accepted[-1]
        change = changes[index]
        answer = guarded(write, state, change if state.deleted else _as_kept(change))
        if not isinstance(answer, Rejected):
            return walk.result(state, answer)
        logger.debug("rejected the change at batch index %s", change.batch_index)
        walk.reject(index, answer.reason)
        state = walk.forward(before, index + 1)
    return walk.result(None, None)


class _Verdict(Enum):
    APPLIED = "applied"
    STALE = "stale"
    POISON = "poison"  # the version rules cannot order it
    REJECTED = "rejected"  # its rendering was rejected


class _Walk:
    """The pass over one item's changes: each change's verdict and the accepted ones, to go back to."""

    def __init__(self, scheme: VersionScheme, changes: Sequence[Change], keep_expired: bool) -> None:
        self.scheme = scheme
        self.changes = changes
        self.keep_expired = keep_expired
        self.verdicts: list[_Verdict | None] = [None] * len(changes)
        self.reasons: dict[int, str] = {}
        self.rejected: list[tuple[Change, str]] = []  # in the order they were rejected
        self.accepted: list[tuple[int, ItemState | None]] = []  # applied changes and the state before each

    def forward(self, state: ItemState | None, start: int) -> ItemState | None:
        """Judge ``changes[start:]`` against ``state``; the state after the last accepted change."""
        for index in range(start, len(self.changes)):
            if self.verdicts[index] is _Verdict.REJECTED:
                continue
            state = self._judge(state, index)
        return state if self.accepted else None

    def _judge(self, state: ItemState | None, index: int) -> ItemState | None:
        change = self.changes[index]
        if self.keep_expired and change.expired:
            # The item stays as it was; the delete only tells where the kept state sits in the stream.
            advanced = self.scheme.confirm(state, change)
        else:
            try:
                advanced = self.scheme.advance(state, change)
            except VersionError as error:
                self.verdicts[index], self.reasons[index] = _Verdict.POISON, str(error)
                return state
        if advanced is None:
            self.verdicts[index] = _Verdict.STALE
            return state
        self.verdicts[index] = _Verdict.APPLIED
        self.accepted.append((index, state))
        return advanced

    def reject(self, index: int, reason: str) -> None:
        self.verdicts[index] = _Verdict.REJECTED
        self.rejected.append((self.changes[index], reason))
        self.accepted.pop()

    def result(self, state: ItemState | None, output: Output | None) -> FoldResult[Output]:
        picked = self._picked
        poison = [(self.changes[i], self.reasons[i]) for i in picked(_Verdict.POISON)] + self.rejected
        return FoldResult(
            state=state,
            output=output,
            last=self.changes[self.accepted[-1][0]] if state is not None else None,
            applied=[self.changes[i] for i in picked(_Verdict.APPLIED)],
            stale=[self.changes[i] for i in picked(_Verdict.STALE)],
            poison=sorted(poison, key=lambda entry: entry[0].batch_index),
        )

    def _picked(self, verdict: _Verdict) -> list[int]:
        return [index for index, given in enumerate(self.verdicts) if given is verdict]


def _as_kept(change: Change) -> Change:
    """The change to render for the state it left: a kept TTL delete renders the image it deleted."""
    if change.kind is not ChangeKind.REMOVE:
        return change
    return replace(change, kind=ChangeKind.MODIFY, new_image=change.old_image)
