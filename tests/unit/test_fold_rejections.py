"""Rejected changes in the fold: a rejected change is poison and the fold goes on from the last accepted state.

Written against the fold as it was before issue 15 (a loop that re-folded the whole item without each
rejected change) and kept passing after it (one pass that rewinds to the state before a rejected change):
``reference_fold`` below is a verbatim copy of the old algorithm, and every case compares with it as well
as stating the expected outcome. The writers' own rejections (a document over the size limit, a reserved
field, a tombstone that cannot be stored, an aggregate over its group limit) are in
test_writer_rejections.py.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from projections.order_events import order_views
from projector.changes import Change, ChangeKind, StreamPosition
from projector.events.fold import fold as event_fold
from projector.projection import Rejected
from projector.versioning import (
    AttributeScheme,
    ItemState,
    StreamScheme,
    VersionError,
    VersionScheme,
    fold,
    fold_write,
)

pytestmark = pytest.mark.unit

KEY = {"order_id": "o-1"}
T0 = 1_700_000_000.0
SEQ = 4_917_400_000_000_000_000_000
ATTRIBUTE = AttributeScheme("version")
STREAM = StreamScheme()


# --- the fold before issue 15, verbatim: the oracle ---------------------------------------------------


@dataclass(slots=True)
class Reference:
    state: ItemState | None
    output: Any = None
    last: Change | None = None
    applied: list[Change] = field(default_factory=list)
    stale: list[Change] = field(default_factory=list)
    poison: list[tuple[Change, str]] = field(default_factory=list)


def reference_fold(
    scheme: VersionScheme,
    stored: ItemState | None,
    changes: Sequence[Change],
    render: Callable[[Change], Any],
    keep_expired: bool = False,
) -> Reference:
    excluded: set[int] = set()
    rejected: list[tuple[Change, str]] = []
    while True:
        result = _advance_all(scheme, stored, changes, excluded, keep_expired)
        result.poison = sorted(result.poison + rejected, key=lambda entry: entry[0].batch_index)
        if result.state is None or result.last is None or result.state.deleted:
            return result
        try:
            result.output = render(_as_kept(result.last))
        except Exception as error:
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
) -> Reference:
    state = stored
    result = Reference(state=None)
    for change in changes:
        if id(change) in excluded:
            continue
        if keep_expired and change.expired:
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
    if change.kind is not ChangeKind.REMOVE:
        return change
    return replace(change, kind=ChangeKind.MODIFY, new_image=change.old_image)


# --- helpers --------------------------------------------------------------------------------------------


def image(version: int, **extra: Any) -> dict[str, Any]:
    return {"order_id": "o-1", "version": Decimal(version), "status": f"v{version}", **extra}


def position(seq: int) -> StreamPosition:
    return StreamPosition(created_at=T0 + seq, sequence=str(SEQ + seq))


def insert(version: int, seq: int, **extra: Any) -> Change:
    return Change(dict(KEY), ChangeKind.INSERT, image(version, **extra), None, position(seq), batch_index=seq)


def modify(version: int, seq: int, **extra: Any) -> Change:
    return Change(
        dict(KEY),
        ChangeKind.MODIFY,
        image(version, **extra),
        image(version - 1),
        position(seq),
        batch_index=seq,
    )


def remove(version: int, seq: int) -> Change:
    return Change(dict(KEY), ChangeKind.REMOVE, None, image(version), position(seq), batch_index=seq)


def replayed(change: Change, batch_index: int) -> Change:
    """The same stream record delivered again (another object, the same position and images)."""
    return replace(change, batch_index=batch_index)


def rejecting(*bad: Change) -> Callable[[Change], Any]:
    """A render that fails for exactly these change objects (by identity) and shows the image otherwise."""
    ids = {id(change) for change in bad}

    def render(change: Change) -> Any:
        if id(change) in ids:
            raise ValueError("unmappable item")
        return change.image

    return render


def rejecting_status(status: str) -> Callable[[Change], Any]:
    """A render that fails for every image with this status (replays of a bad record fail alike)."""

    def render(change: Change) -> Any:
        assert change.image is not None
        if change.image["status"] == status:
            raise KeyError("total")
        return change.image

    return render


def summary(result: Any) -> tuple[Any, ...]:
    return (
        result.state,
        id(result.last) if result.last is not None else None,
        result.output,
        [id(c) for c in result.applied],
        [id(c) for c in result.stale],
        [(id(c), reason) for c, reason in result.poison],
    )


def both(
    stored: ItemState | None,
    changes: list[Change],
    render: Callable[[Change], Any],
    scheme: VersionScheme = ATTRIBUTE,
    keep_expired: bool = False,
) -> Any:
    """The fold's result, after checking that it is exactly what the old fold answered."""
    result = fold(scheme, stored, changes, render, keep_expired)
    assert summary(result) == summary(reference_fold(scheme, stored, changes, render, keep_expired))
    return result


def poisoned(result: Any) -> list[Change]:
    return [change for change, _ in result.poison]


# --- the fold: where the rejected change sits -----------------------------------------------------------


def test_a_rejected_change_in_the_middle_is_dropped_and_the_later_ones_judged_again() -> None:
    # v3 is rendered only because the late v2 record is stale against it; once v3 is rejected, the fold
    # goes on from v1 and the late v2 record, judged against v1, is the newest accepted state.
    first, bad, late = insert(1, 1), modify(3, 2), modify(2, 3)
    result = both(None, [first, bad, late], rejecting(bad))
    assert poisoned(result) == [bad] and "projection failed: ValueError" in result.poison[0][1]
    assert result.last is late and result.output == late.image
    assert result.applied == [first, late] and result.stale == []


def test_a_rejected_change_that_later_changes_supersede_is_never_rendered() -> None:
    first, bad, last = insert(1, 1), modify(2, 2), modify(3, 3)
    result = both(None, [first, bad, last], rejecting(bad))
    assert result.poison == [] and result.last is last and result.applied == [first, bad, last]


def test_a_rejected_first_change_lets_a_change_it_made_stale_in() -> None:
    bad, late = insert(2, 1), modify(1, 2)
    result = both(None, [bad, late], rejecting(bad))
    assert poisoned(result) == [bad]
    assert result.last is late and result.state is not None and result.state.rev == 1
    assert result.applied == [late]


def test_a_rejected_last_change_falls_back_to_the_one_before() -> None:
    first, second, bad = insert(1, 1), modify(2, 2), modify(3, 3)
    result = both(None, [first, second, bad], rejecting(bad))
    assert poisoned(result) == [bad] and result.last is second and result.output == second.image
    assert result.applied == [first, second]


def test_a_rejected_change_against_a_stored_state_writes_nothing() -> None:
    stored = ATTRIBUTE.advance(None, insert(1, 1))
    bad = modify(2, 2)
    result = both(stored, [bad], rejecting(bad))
    assert poisoned(result) == [bad]
    assert result.state is None and result.last is None and result.output is None and not result.applied


def test_all_changes_rejected_leave_nothing_to_write_and_each_is_poison_once() -> None:
    changes = [insert(1, 1), modify(2, 2), modify(3, 3)]
    result = both(None, changes, rejecting(*changes))
    assert poisoned(result) == changes  # in batch order
    assert result.state is None and result.last is None and result.output is None
    assert result.applied == [] and result.stale == []


def test_a_delete_is_never_rendered_so_the_fold_never_rejects_it() -> None:
    first, bad, gone = insert(1, 1), modify(2, 2), remove(2, 3)
    result = both(None, [first, bad, gone], rejecting(first, bad, gone))
    assert result.poison == [] and result.last is gone
    assert result.state is not None and result.state.deleted and result.output is None


def test_a_rejected_re_creation_after_a_delete_leaves_the_tombstone() -> None:
    stored = ATTRIBUTE.advance(None, insert(1, 1))
    gone, again = remove(1, 2), insert(1, 3, status="b")
    result = both(stored, [gone, again], rejecting(again))
    assert poisoned(result) == [again] and result.last is gone
    assert result.state is not None and result.state.deleted and result.state.life == 0


def test_replays_of_a_record_rejected_for_its_contents_are_all_poison() -> None:
    first = insert(1, 1)
    bad = modify(2, 2)
    changes = [first, replayed(first, 3), bad, replayed(bad, 4), replayed(bad, 5)]
    result = both(None, changes, rejecting_status("v2"))
    assert poisoned(result) == changes[2:]
    assert "KeyError" in result.poison[0][1]
    assert result.last is first and result.applied == [first] and result.stale == [changes[1]]


def test_a_replay_of_a_rejected_change_is_judged_on_its_own() -> None:
    first, bad = insert(1, 1), modify(2, 2)
    again = replayed(bad, 3)
    result = both(None, [first, bad, again], rejecting(bad))
    assert poisoned(result) == [bad]
    assert result.last is again and result.applied == [first, again]


def test_a_rejection_between_replays_of_older_changes_keeps_them_stale() -> None:
    first, second, bad = insert(1, 1), modify(2, 2), modify(3, 3)
    changes = [first, second, bad, replayed(first, 4), replayed(second, 5)]
    result = both(None, changes, rejecting(bad))
    assert poisoned(result) == [bad] and result.last is second
    assert result.stale == changes[3:]


def test_a_change_without_a_version_and_a_rejected_change_are_both_poison_in_batch_order() -> None:
    broken = Change(dict(KEY), ChangeKind.MODIFY, {"order_id": "o-1"}, image(1), position(2), batch_index=2)
    first, bad = insert(1, 1), modify(2, 3)
    result = both(None, [first, broken, bad], rejecting(bad))
    assert poisoned(result) == [broken, bad]
    assert result.last is first


def test_rejections_in_stream_position_mode() -> None:
    first, second, bad = insert(1, 1), modify(1, 2), modify(1, 3)
    result = both(None, [first, second, bad], rejecting(bad, second), scheme=STREAM)
    assert poisoned(result) == [second, bad] and result.last is first


# --- the fold: any subset rejected, against the old fold ------------------------------------------------


@st.composite
def deliveries(draw: st.DrawFn) -> tuple[VersionScheme, ItemState | None, list[Change], set[int]]:
    """An item's records (inserts, updates, deletes, versions out of step, replays) and which to reject."""
    scheme = draw(st.sampled_from([ATTRIBUTE, STREAM]))
    records: list[Change] = []
    for seq in range(1, draw(st.integers(1, 9)) + 1):
        kind = draw(st.sampled_from(["insert", "modify", "modify", "remove", "replay"]))
        version = draw(st.integers(1, 5))
        if kind == "replay" and records:
            records.append(replayed(draw(st.sampled_from(records)), seq))
        elif kind == "insert":
            records.append(insert(version, seq))
        elif kind == "remove":
            records.append(remove(version, seq))
        else:
            records.append(modify(version + 1, seq))
    split = draw(st.integers(0, len(records)))
    stored = None
    for change in records[:split]:
        stored = scheme.advance(stored, change) or stored
    batch = records[split:]
    bad = draw(st.sets(st.integers(0, max(0, len(batch) - 1)))) if batch else set()
    return scheme, stored, batch, bad


@settings(max_examples=300, deadline=None)
@given(deliveries(), st.booleans())
def test_any_rejected_subset_folds_as_the_old_fold_did(delivery: tuple, keep_expired: bool) -> None:
    scheme, stored, batch, bad = delivery
    result = both(stored, batch, rejecting(*[batch[i] for i in bad]), scheme, keep_expired)
    assert {id(c) for c in result.applied}.isdisjoint(id(c) for c, _ in result.poison)
    if result.last is not None:
        assert id(result.last) not in {id(c) for c, _ in result.poison}


# --- since issue 15: a rejection is a value, the same everywhere ----------------------------------------


def test_a_render_answering_rejected_is_the_same_as_one_raising() -> None:
    first, bad, late = insert(1, 1), modify(3, 2), modify(2, 3)

    def render(change: Change) -> Any:
        return Rejected("unmappable item") if change is bad else change.image

    answered = fold(ATTRIBUTE, None, [first, bad, late], render)
    raised = fold(ATTRIBUTE, None, [first, bad, late], rejecting(bad))
    assert poisoned(answered) == poisoned(raised) == [bad] and answered.poison[0][1] == "unmappable item"
    assert summary(answered)[:5] == summary(raised)[:5]


def test_fold_write_asks_about_a_deleted_final_state_too_and_may_reject_it() -> None:
    stored = ATTRIBUTE.advance(None, insert(1, 1))
    first, gone = modify(2, 2), remove(2, 3)
    seen: list[tuple[bool, ChangeKind]] = []

    def write(state: ItemState, change: Change) -> Any:
        seen.append((state.deleted, change.kind))
        return Rejected("no tombstones here") if state.deleted else change.image

    result = fold_write(ATTRIBUTE, stored, [first, gone], write)
    assert seen == [(True, ChangeKind.REMOVE), (False, ChangeKind.MODIFY)]
    assert poisoned(result) == [gone] and result.last is first and result.output == first.image


def test_the_event_fold_stops_at_a_rejected_step_with_its_reason() -> None:
    placed = order_views.typed_event(
        {
            "stream_id": "order-1",
            "version": Decimal(1),
            "type": "OrderPlaced",
            "data": {"order_id": "1", "customer_id": "c", "placed_at": "2026-01-01T00:00:00Z"},
            "recorded_at": "x",
        }
    )
    outcome = event_fold(order_views, "order-1", None, [(1, placed), (2, Rejected("type: bad")), (3, None)])
    assert outcome.state is not None and outcome.state.version == 1 and outcome.applied == 1
    assert outcome.stop is not None and outcome.stop.version == 2 and outcome.stop.reason == "type: bad"
    assert not outcome.stop.gap
