"""The versioning rules, case by case: what is newer, what is stale, what starts a new life.

The last section keeps the counterexamples found by the delivery model (test_versioning_properties.py)
as regression tests: each broke the exactness promise before the rules were fixed (commit bb24441).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from projector.changes import BackfillStamp, Change, ChangeKind, StreamPosition
from projector.projection import AttributeVersion, StreamPositionVersion
from projector.projection.base import ATTRIBUTE_VERSION_BITS
from projector.versioning import (
    AttributeScheme,
    ItemState,
    StreamScheme,
    VersionError,
    VersionScheme,
    fold,
    scheme_for,
)
from projector.versioning.schemes import LIFE_MARGIN_S, MAX_LIFE

pytestmark = pytest.mark.unit

KEY = {"order_id": "o-1"}
T0 = 1_700_000_000.0
SEQ = 4_917_400_000_000_000_000_000  # a realistic 22-digit sequence number; low nine digits are zero
MAX_63_BITS = (1 << 63) - 1

ATTRIBUTE = AttributeScheme("version")
STREAM = StreamScheme()


def image(version: int, life: str = "a", **extra: Any) -> dict[str, Any]:
    return {"order_id": "o-1", "version": Decimal(version), "status": f"{life}-v{version}", **extra}


def position(at: float, seq: int) -> StreamPosition:
    return StreamPosition(created_at=at, sequence=str(SEQ + seq))


def insert(version: int, at: float, seq: int, life: str = "a") -> Change:
    return Change(dict(KEY), ChangeKind.INSERT, image(version, life), None, position(at, seq))


def modify(version: int, at: float, seq: int, life: str = "a") -> Change:
    return Change(
        dict(KEY), ChangeKind.MODIFY, image(version, life), image(version - 1, life), position(at, seq)
    )


def remove(version: int, at: float, seq: int, life: str = "a", expired: bool = False) -> Change:
    return Change(
        dict(KEY), ChangeKind.REMOVE, None, image(version, life), position(at, seq), expired=expired
    )


def scan(version: int, read_at: float, started: float | None = None, life: str = "a") -> Change:
    stamp = BackfillStamp(scan_started_at=read_at if started is None else started, read_at=read_at)
    return Change(dict(KEY), ChangeKind.INSERT, image(version, life), None, backfill=stamp)


def run(
    scheme: VersionScheme,
    changes: list[Change],
    state: ItemState | None = None,
) -> tuple[ItemState | None, Change | None]:
    """Advance through ``changes``; answer the final state and the change behind it."""
    last = None
    for change in changes:
        advanced = scheme.advance(state, change)
        if advanced is not None:
            if state is not None:
                assert scheme.external_version(advanced) > scheme.external_version(state)
            state, last = advanced, change
    return state, last


def shown(changes: list[Change], scheme: VersionScheme = ATTRIBUTE) -> dict[str, Any] | None:
    """What the read model shows after ``changes``: the image behind the final state, None if deleted."""
    state, last = run(scheme, changes)
    assert state is not None and last is not None
    return None if state.deleted else last.image


# --- changes and positions -----------------------------------------------------------------------------


def test_sort_key_orders_by_whole_seconds_then_sequence_numerically() -> None:
    early = StreamPosition(created_at=T0 + 0.9, sequence="999")
    later = StreamPosition(created_at=T0 + 1.0, sequence="1")
    same_second = StreamPosition(created_at=T0 + 0.1, sequence="1000")
    assert early.sort_key < later.sort_key
    assert early.sort_key < same_second.sort_key  # 999 < 1000 numerically, not as text
    assert StreamPosition.seconds_of(later.sort_key) == int(T0) + 1


def test_change_image_and_time() -> None:
    assert remove(2, T0, 1).image is None
    assert modify(2, T0, 1).image == image(2)
    assert modify(2, T0 + 0.5, 1).happened_at == T0 + 0.5
    assert scan(2, read_at=T0 + 7, started=T0).happened_at == T0 + 7
    assert scan(2, T0).sequence_number is None
    assert insert(1, T0, 5).sequence_number == str(SEQ + 5)


def test_item_state_round_trips_through_a_dict() -> None:
    state = ItemState(life=2, rev=7, deleted=True, position=position(T0, 3).sort_key, seen_at=T0 + 0.25)
    assert ItemState.from_dict(state.to_dict()) == state
    assert ItemState.from_dict({**state.to_dict(), "position": None}).position is None
    assert state.order == (2, 7, 1)


def test_scheme_for_follows_the_version_policy() -> None:
    chosen = scheme_for(AttributeVersion(attribute="rev_no"))
    assert isinstance(chosen, AttributeScheme) and chosen.attribute == "rev_no"
    assert isinstance(scheme_for(StreamPositionVersion()), StreamScheme)


# --- attribute scheme: reading the version -------------------------------------------------------------


def test_attribute_revision_reads_the_new_image_and_the_old_image_of_a_remove() -> None:
    assert ATTRIBUTE.revision(modify(4, T0, 1)) == 4
    assert ATTRIBUTE.revision(remove(6, T0, 1)) == 6
    plain_int = Change(dict(KEY), ChangeKind.INSERT, {"order_id": "o-1", "version": 3}, None, position(T0, 1))
    assert ATTRIBUTE.revision(plain_int) == 3


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (Change(dict(KEY), ChangeKind.MODIFY, None, image(1), position(T0, 1)), "NEW_AND_OLD_IMAGES"),
        (Change(dict(KEY), ChangeKind.REMOVE, None, None, position(T0, 1)), "OldImage"),
        (Change(dict(KEY), ChangeKind.INSERT, {"order_id": "o-1"}, None, position(T0, 1)), "no 'version'"),
        (
            Change(dict(KEY), ChangeKind.INSERT, {"version": Decimal("1.5")}, None, position(T0, 1)),
            "whole number",
        ),
        (Change(dict(KEY), ChangeKind.INSERT, {"version": True}, None, position(T0, 1)), "whole number"),
        (Change(dict(KEY), ChangeKind.INSERT, {"version": "3"}, None, position(T0, 1)), "whole number"),
        (Change(dict(KEY), ChangeKind.INSERT, {"version": Decimal(-1)}, None, position(T0, 1)), "within 0.."),
        (
            Change(
                dict(KEY), ChangeKind.INSERT, {"version": 1 << ATTRIBUTE_VERSION_BITS}, None, position(T0, 1)
            ),
            "within 0..",
        ),
    ],
    ids=[
        "modify-without-new-image",
        "remove-without-old-image",
        "missing",
        "fraction",
        "bool",
        "string",
        "negative",
        "too-large",
    ],
)
def test_attribute_revision_rejects_unusable_versions(change: Change, message: str) -> None:
    with pytest.raises(VersionError, match=message):
        ATTRIBUTE.advance(None, change)


def test_attribute_version_at_the_top_of_its_range_is_accepted_and_fits_63_bits() -> None:
    top = (1 << ATTRIBUTE_VERSION_BITS) - 1
    change = Change(dict(KEY), ChangeKind.REMOVE, None, {"version": Decimal(top)}, position(T0, 1))
    state = ATTRIBUTE.advance(None, change)
    assert state is not None and state.rev == top
    assert ATTRIBUTE.external_version(state) == (1 << (ATTRIBUTE_VERSION_BITS + 2)) - 1
    busiest = ItemState(life=MAX_LIFE, rev=top, deleted=True, position=None, seen_at=T0)
    assert ATTRIBUTE.external_version(busiest) == MAX_63_BITS


def test_attribute_life_counter_is_bounded_and_the_next_re_creation_is_poison() -> None:
    """2**22 - 1 re-creations fit the 63-bit external version; the next one is refused, never wrapped."""
    assert MAX_LIFE == (1 << 22) - 1
    last_life = ItemState(
        life=MAX_LIFE - 1, rev=3, deleted=True, position=position(T0, 1).sort_key, seen_at=T0
    )
    reborn = ATTRIBUTE.advance(last_life, insert(1, T0 + 1, 2, life="b"))
    assert reborn is not None and reborn.life == MAX_LIFE
    assert ATTRIBUTE.external_version(reborn) > ATTRIBUTE.external_version(last_life)
    assert ATTRIBUTE.external_version(reborn) <= MAX_63_BITS
    deleted = ATTRIBUTE.advance(reborn, remove(1, T0 + 2, 3, life="b"))
    assert deleted is not None and ATTRIBUTE.external_version(deleted) <= MAX_63_BITS
    with pytest.raises(VersionError, match="re-created 4,194,303 times"):
        ATTRIBUTE.advance(deleted, insert(1, T0 + 3, 4, life="c"))
    with pytest.raises(VersionError, match="backfill --rebuild"):
        ATTRIBUTE.advance(deleted, scan(1, read_at=T0 + 60, life="c"))
    live = ItemState(life=MAX_LIFE, rev=5, deleted=False, position=position(T0, 9).sort_key, seen_at=T0)
    with pytest.raises(VersionError):
        ATTRIBUTE.advance(live, insert(1, T0 + 30, 10, life="c"))  # an INSERT after a missed delete
    # In a batch, that change is poison (a dead letter); the others are still applied.
    result = fold(ATTRIBUTE, deleted, [insert(1, T0 + 3, 4, life="c")], render_image)
    assert result.state is None and len(result.poison) == 1
    assert result.poison[0][1].startswith("the item was deleted and re-created")


# --- attribute scheme: ordering ------------------------------------------------------------------------


def test_attribute_first_change_is_taken_and_duplicates_are_stale() -> None:
    first = ATTRIBUTE.advance(None, insert(1, T0, 1))
    assert first == ItemState(life=0, rev=1, deleted=False, position=position(T0, 1).sort_key, seen_at=T0)
    assert ATTRIBUTE.advance(first, insert(1, T0, 1)) is None


def test_attribute_newer_version_wins_and_older_or_replayed_changes_are_stale() -> None:
    state, _ = run(ATTRIBUTE, [insert(1, T0, 1), modify(2, T0, 2), modify(3, T0 + 1, 3)])
    assert state is not None and state.rev == 3 and state.position == position(T0 + 1, 3).sort_key
    for replayed in (modify(2, T0, 2), modify(3, T0 + 1, 3), insert(1, T0, 1)):
        assert ATTRIBUTE.advance(state, replayed) is None


def test_attribute_a_later_modify_never_lowers_the_version() -> None:
    state = ATTRIBUTE.advance(None, modify(5, T0, 1))
    assert ATTRIBUTE.advance(state, modify(4, T0 + 1, 2)) is None


def test_attribute_delete_is_final_against_late_changes_of_its_life() -> None:
    state, _ = run(ATTRIBUTE, [insert(1, T0, 1), modify(2, T0, 2), remove(2, T0 + 1, 3)])
    assert state is not None and state.deleted
    for late in (modify(2, T0, 2), insert(1, T0, 1), remove(2, T0 + 1, 3)):
        assert ATTRIBUTE.advance(state, late) is None
    # A scan that read the item before the delete (or too close after it to tell) is stale too.
    assert ATTRIBUTE.advance(state, scan(2, read_at=T0 + 0.5)) is None
    assert ATTRIBUTE.advance(state, scan(2, read_at=T0 + 1 + LIFE_MARGIN_S)) is None


def test_attribute_re_creation_is_a_new_life_with_a_larger_external_version() -> None:
    deleted, _ = run(ATTRIBUTE, [insert(1, T0, 1), modify(2, T0, 2), modify(3, T0, 3), remove(3, T0, 4)])
    assert deleted is not None
    reborn = ATTRIBUTE.advance(deleted, insert(1, T0 + 2, 5, life="b"))
    assert reborn is not None and (reborn.life, reborn.rev, reborn.deleted) == (1, 1, False)
    assert ATTRIBUTE.external_version(reborn) > ATTRIBUTE.external_version(deleted)


def test_attribute_delete_and_re_creation_in_the_same_second_are_ordered_by_sequence() -> None:
    changes = [insert(1, T0, 1), modify(2, T0, 2), remove(2, T0, 3), insert(1, T0, 4, life="b")]
    assert shown(changes) == image(1, "b")


def test_attribute_insert_later_than_a_live_state_is_a_new_life_even_without_the_remove() -> None:
    state, _ = run(ATTRIBUTE, [insert(1, T0, 1), modify(2, T0, 2), modify(3, T0, 3)])
    assert state is not None
    reborn = ATTRIBUTE.advance(state, insert(1, T0 + 30, 9, life="b"))
    assert reborn is not None and reborn.life == state.life + 1 and reborn.rev == 1


def test_attribute_scan_with_a_newer_version_wins_and_keeps_the_stream_position() -> None:
    state, _ = run(ATTRIBUTE, [insert(1, T0, 1), modify(2, T0, 2)])
    assert state is not None
    scanned = ATTRIBUTE.advance(state, scan(4, read_at=T0 + 30))
    assert scanned is not None and scanned.rev == 4 and scanned.life == state.life
    assert scanned.position == state.position and scanned.seen_at == T0 + 30
    # The stream then replays what the scan already saw: older changes are stale; the record of the
    # scanned state itself places it in the stream (same life, rev and content; a larger external version).
    assert ATTRIBUTE.advance(scanned, modify(3, T0 + 1, 3)) is None
    placed = ATTRIBUTE.advance(scanned, modify(4, T0 + 2, 4))
    assert placed is not None and placed.order == scanned.order and not placed.scanned
    assert placed.position == position(T0 + 2, 4).sort_key
    assert ATTRIBUTE.external_version(placed) == ATTRIBUTE.external_version(scanned) + 1
    assert ATTRIBUTE.advance(placed, modify(4, T0 + 2, 4)) is None
    newer = ATTRIBUTE.advance(scanned, modify(5, T0 + 31, 5))
    assert newer is not None and newer.rev == 5


def test_attribute_scan_with_the_same_version_is_stale_and_an_older_one_is_a_later_life() -> None:
    state, _ = run(ATTRIBUTE, [insert(1, T0, 1), modify(2, T0, 2)])
    assert state is not None
    assert ATTRIBUTE.advance(state, scan(2, read_at=T0 + 60)) is None
    # Too close to the stored change to tell which life the scan read: left to the stream.
    assert ATTRIBUTE.advance(state, scan(1, read_at=T0 + LIFE_MARGIN_S, life="b")) is None
    # Read clearly after v2 was made, yet at version 1: the item was deleted and re-created since.
    reborn = ATTRIBUTE.advance(state, scan(1, read_at=T0 + 60, life="b"))
    assert reborn is not None and (reborn.life, reborn.rev, reborn.scanned) == (1, 1, True)
    assert ATTRIBUTE.external_version(reborn) > ATTRIBUTE.external_version(state)


def test_attribute_scan_first_then_the_stream_catches_up() -> None:
    changes = [
        scan(3, read_at=T0 + 10),
        insert(1, T0, 1),
        modify(2, T0 + 1, 2),
        modify(3, T0 + 2, 3),
        modify(4, T0 + 20, 4),
    ]
    state, last = run(ATTRIBUTE, changes)
    assert state is not None and last is changes[-1] and state.rev == 4


def test_attribute_scan_soon_after_a_delete_is_left_to_the_stream() -> None:
    deleted, _ = run(ATTRIBUTE, [insert(1, T0, 1), remove(1, T0 + 1, 2)])
    assert deleted is not None
    # Read within LIFE_MARGIN_S of the delete's timestamp: possibly the old life, so not taken.
    assert ATTRIBUTE.advance(deleted, scan(1, read_at=T0 + 1 + LIFE_MARGIN_S - 0.001, life="b")) is None
    # The stream carries the re-creation anyway.
    reborn = ATTRIBUTE.advance(deleted, insert(1, T0 + 2, 3, life="b"))
    assert reborn is not None and reborn.life == 1


def test_attribute_scan_well_after_a_delete_is_a_new_life() -> None:
    deleted, _ = run(ATTRIBUTE, [insert(1, T0, 1), modify(2, T0, 2), remove(2, T0 + 1, 3)])
    assert deleted is not None
    reborn = ATTRIBUTE.advance(deleted, scan(1, read_at=T0 + 1 + LIFE_MARGIN_S + 0.5, life="b"))
    assert reborn is not None and (reborn.life, reborn.rev, reborn.deleted) == (1, 1, False)
    assert reborn.position == deleted.position
    # The stream's own INSERT of that life arrives later: it cannot be older than the scan's image of
    # the same life, and the stream's later changes still apply.
    changes = [
        insert(1, T0, 1),
        modify(2, T0, 2),
        remove(2, T0 + 1, 3),
        scan(1, read_at=T0 + 7, life="b"),
        insert(1, T0 + 3, 4, life="b"),
        modify(2, T0 + 9, 5, life="b"),
    ]
    assert shown(changes) == image(2, "b")


def test_attribute_scan_of_a_later_life_is_corrected_by_the_stream() -> None:
    # The scan read life b (version 2) while the sink still had life a at version 1: the scan wins on
    # version, then the stream replays a's delete (stale: version 1 < 2) and b's INSERT (a new life).
    changes = [
        insert(1, T0, 1),
        scan(2, read_at=T0 + 20, life="b"),
        remove(1, T0 + 2, 2),
        insert(1, T0 + 10, 3, life="b"),
        modify(2, T0 + 15, 4, life="b"),
        modify(3, T0 + 30, 5, life="b"),
    ]
    assert shown(changes) == image(3, "b")


# --- attribute scheme: a scanned state against late and redriven changes (issue 14, case 6) ------------


def test_a_late_insert_never_rolls_back_a_scanned_state() -> None:
    """Backfill wrote v2, the stream's MODIFY v2 arrived, then the INSERT v1 came again (a redrive)."""
    scanned = ATTRIBUTE.advance(None, scan(2, read_at=T0 + 1))
    assert scanned is not None and scanned.scanned and scanned.position is None
    placed = ATTRIBUTE.advance(scanned, modify(2, T0, 2))  # its own record: places it, changes nothing
    assert (
        placed is not None and placed.order == scanned.order and placed.position == position(T0, 2).sort_key
    )
    assert ATTRIBUTE.advance(placed, insert(1, T0, 1)) is None  # was a new life showing v1
    # The same without the MODIFY (a rebuilt index that never saw the stream before the scan): the
    # INSERT was made before the read, so the scanned image includes it.
    assert ATTRIBUTE.advance(scanned, insert(1, T0, 1)) is None
    assert shown([scan(2, read_at=T0 + 1), modify(2, T0, 2), insert(1, T0, 1)]) == image(2)


def test_a_scanned_state_is_advanced_by_its_successor_only() -> None:
    scanned = ATTRIBUTE.advance(None, scan(2, read_at=T0 + 1))
    assert scanned is not None
    successor = ATTRIBUTE.advance(scanned, modify(3, T0 + 2, 5))  # its old image is the scanned image
    assert successor is not None and (successor.life, successor.rev, successor.scanned) == (0, 3, False)
    # A change of another life with a higher version, made before or around the read: never applied.
    assert ATTRIBUTE.advance(scanned, modify(3, T0 - 30, 1, life="z")) is None
    assert ATTRIBUTE.advance(scanned, modify(3, T0 + 2, 5, life="z")) is None
    assert ATTRIBUTE.advance(scanned, remove(4, T0 + 2, 5, life="z")) is None
    # The delete of exactly the scanned state is its successor too.
    deleted = ATTRIBUTE.advance(scanned, remove(2, T0 + 2, 5))
    assert deleted is not None and deleted.deleted and deleted.life == 0
    # Made clearly after the read without being its successor (that one was lost): a later life.
    later = ATTRIBUTE.advance(scanned, insert(1, T0 + 1 + LIFE_MARGIN_S + 1, 9, life="b"))
    assert later is not None and later.life == 1 and not later.scanned


def test_keep_expired_places_a_scanned_state_at_its_ttl_delete_so_the_re_creation_is_a_new_life() -> None:
    changes = [
        scan(2, read_at=T0 + 1),
        remove(2, T0 + 2, 3, expired=True),  # DynamoDB's TTL delete of the scanned state: kept
        insert(1, T0 + 3, 4, life="b"),  # re-created within the margin of the read
    ]
    kept = fold(ATTRIBUTE, None, changes[:2], render_image, keep_expired=True)
    assert kept.output == image(2) and kept.state is not None and not kept.state.deleted
    assert kept.state.position == position(T0 + 2, 3).sort_key and kept.applied == changes[:2]
    result = fold(ATTRIBUTE, None, changes, render_image, keep_expired=True)
    assert result.output == image(1, "b") and result.state is not None and result.state.life == 1


def test_a_redrive_of_a_deleted_life_never_replaces_a_scanned_re_creation() -> None:
    changes = [
        scan(2, read_at=T0 + 3, life="b"),
        modify(5, T0, 1, life="a"),  # the old life, made before the read, with a higher version
        remove(5, T0 + 1, 2, life="a"),
        insert(1, T0 + 2, 3, life="b"),
        modify(2, T0 + 2.5, 4, life="b"),
    ]
    assert shown(changes) == image(2, "b")


def test_image_digest_is_the_same_for_the_same_item_however_it_was_decoded() -> None:
    from projector.versioning.digest import image_digest as digest

    item = {"order_id": "o-1", "total": Decimal("12.50"), "tags": {"a", "b"}, "blob": b"\x01", "n": None}
    same = {"n": None, "blob": b"\x01", "tags": {"b", "a"}, "total": Decimal("12.5"), "order_id": "o-1"}
    assert digest(item) == digest(same)
    assert digest({"x": Decimal("1E+2")}) == digest({"x": Decimal("100")})
    assert digest({"x": Decimal("-1.0E+1")}) == digest({"x": Decimal("-10")})
    for other in ({**item, "total": Decimal("12.51")}, {**item, "total": "12.5"}, {**item, "blob": "01"}):
        assert digest(other) != digest(item)


# --- stream scheme -------------------------------------------------------------------------------------


def test_stream_versions_grow_within_a_second_and_a_scan_ranks_before_its_start() -> None:
    first = STREAM.advance(None, modify(2, T0 + 0.25, 123))
    assert first is not None and STREAM.external_version(first) == int(T0) << 29
    second = STREAM.advance(first, modify(3, T0 + 0.75, 124))
    assert second is not None and STREAM.external_version(second) == STREAM.external_version(first) + 1
    next_second = STREAM.advance(second, modify(4, T0 + 1, 125))
    assert next_second is not None and STREAM.external_version(next_second) == (int(T0) + 1) << 29
    scanned = STREAM.advance(None, scan(2, read_at=T0 + 5, started=T0 + 2.5))
    assert scanned is not None and scanned.position is not None
    assert STREAM.advance(scanned, modify(3, T0 + 1.9, 999)) is None
    assert STREAM.advance(scanned, modify(3, T0 + 2, 1)) is not None


def test_stream_revision_rejects_a_non_numeric_sequence_number() -> None:
    change = Change(dict(KEY), ChangeKind.MODIFY, image(2), image(1), StreamPosition(T0, "abc"))
    with pytest.raises(VersionError, match="SequenceNumber"):
        STREAM.advance(None, change)


def test_stream_later_position_wins_and_replays_are_stale() -> None:
    changes = [insert(1, T0, 1), modify(2, T0, 2), modify(3, T0 + 1, 3)]
    state, last = run(STREAM, changes)
    assert state is not None and last is changes[-1]
    for replayed in changes:
        assert STREAM.advance(state, replayed) is None


def test_stream_delete_is_final_and_re_creation_wins() -> None:
    changes = [insert(1, T0, 1), remove(1, T0 + 1, 2)]
    deleted, _ = run(STREAM, changes)
    assert deleted is not None and deleted.deleted
    assert STREAM.advance(deleted, insert(1, T0, 1)) is None
    reborn = STREAM.advance(deleted, insert(1, T0 + 1, 3, life="b"))
    assert reborn is not None and not reborn.deleted


def test_stream_scan_ranks_below_every_change_made_after_the_scan_started() -> None:
    started = T0 + 10.4
    scanned = STREAM.advance(None, scan(5, read_at=T0 + 12, started=started))
    assert scanned is not None
    # A change in the scan's starting second may be after the scan started: the stream wins.
    assert STREAM.advance(scanned, modify(6, T0 + 10, 1)) is not None
    assert STREAM.advance(scanned, remove(6, T0 + 11, 1)) is not None
    # A change in an earlier second happened before the scan started, so the scan saw it or later.
    assert STREAM.advance(scanned, modify(4, T0 + 9, 1)) is None
    assert STREAM.advance(scanned, remove(4, T0 + 9, 1)) is None


def test_stream_scan_after_a_delete_is_taken_only_if_the_scan_started_after_its_second() -> None:
    deleted, _ = run(STREAM, [insert(1, T0, 1), remove(1, T0 + 3, 2)])
    assert STREAM.advance(deleted, scan(1, read_at=T0 + 3.9, started=T0 + 3.1)) is None
    reborn = STREAM.advance(deleted, scan(1, read_at=T0 + 4.2, started=T0 + 4.0, life="b"))
    assert reborn is not None and not reborn.deleted


def test_stream_external_version_fits_63_bits_until_the_year_2100() -> None:
    year_2100 = 4_102_444_800.0
    change = Change(dict(KEY), ChangeKind.REMOVE, None, image(1), StreamPosition(year_2100, "9" * 40))
    state = STREAM.advance(None, change)
    assert state is not None and 0 < STREAM.external_version(state) <= MAX_63_BITS


# --- fold ----------------------------------------------------------------------------------------------


def render_image(change: Change) -> dict[str, Any] | None:
    return change.image


def test_fold_delete_then_re_create_in_one_batch_goes_through_the_rules() -> None:
    stored, _ = run(ATTRIBUTE, [insert(1, T0, 1), modify(2, T0, 2), modify(3, T0, 3)])
    batch = [modify(3, T0, 3), remove(3, T0 + 1, 4), insert(1, T0 + 2, 5, life="b")]
    result = fold(ATTRIBUTE, stored, batch, render_image)
    assert result.state is not None and result.state.life == 1 and not result.state.deleted
    assert result.output == image(1, "b") and result.last is batch[-1]
    assert result.stale == [batch[0]] and result.applied == batch[1:]


def test_fold_never_renders_a_remove() -> None:
    def render(change: Change) -> Any:
        raise AssertionError(f"render called for {change.kind}")

    result = fold(ATTRIBUTE, None, [remove(1, T0, 1)], render)
    assert result.state is not None and result.state.deleted and result.output is None


def test_fold_with_nothing_new_writes_nothing() -> None:
    stored, _ = run(ATTRIBUTE, [insert(1, T0, 1), modify(2, T0, 2)])
    result = fold(ATTRIBUTE, stored, [insert(1, T0, 1), modify(2, T0, 2)], render_image)
    assert result.state is None and result.output is None and result.last is None
    assert len(result.stale) == 2 and not result.applied


def test_fold_reports_a_change_without_a_version_as_poison_and_applies_the_rest() -> None:
    broken = Change(dict(KEY), ChangeKind.MODIFY, {"order_id": "o-1"}, image(1), position(T0, 2))
    batch = [insert(1, T0, 1), broken, modify(2, T0, 3)]
    result = fold(ATTRIBUTE, None, batch, render_image)
    assert [change for change, _ in result.poison] == [broken]
    assert "version" in result.poison[0][1]
    assert result.output == image(2) and result.applied == [batch[0], batch[2]]


def test_fold_falls_back_to_the_previous_change_when_render_rejects_the_last() -> None:
    batch = [insert(1, T0, 1), modify(2, T0, 2)]

    def render(change: Change) -> dict[str, Any] | None:
        if change is batch[1]:
            raise KeyError("total")
        return change.image

    result = fold(ATTRIBUTE, None, batch, render)
    assert [(change, "KeyError" in reason) for change, reason in result.poison] == [(batch[1], True)]
    assert result.output == image(1) and result.last is batch[0] and result.applied == [batch[0]]


def test_fold_keep_expired_ignores_ttl_removes_only() -> None:
    stored, _ = run(ATTRIBUTE, [insert(1, T0, 1)])
    expired = remove(1, T0 + 5, 2, expired=True)
    kept = fold(ATTRIBUTE, stored, [expired], render_image, keep_expired=True)
    assert kept.state is None and kept.stale == [expired]
    dropped = fold(ATTRIBUTE, stored, [expired], render_image, keep_expired=False)
    assert dropped.state is not None and dropped.state.deleted
    deleted = remove(1, T0 + 5, 2)
    result = fold(ATTRIBUTE, stored, [deleted], render_image, keep_expired=True)
    assert result.state is not None and result.state.deleted


def test_fold_keep_expired_still_sees_the_re_creation_after_an_expiry() -> None:
    stored, _ = run(ATTRIBUTE, [insert(1, T0, 1), modify(2, T0, 2)])
    batch = [remove(2, T0 + 86_400, 3, expired=True), insert(1, T0 + 90_000, 4, life="b")]
    result = fold(ATTRIBUTE, stored, batch, render_image, keep_expired=True)
    assert result.output == image(1, "b") and result.state is not None and result.state.life == 1


# --- regressions: counterexamples found by the delivery model -----------------------------------------


def test_a_late_scan_of_an_old_life_never_replaces_the_re_created_item() -> None:
    changes = [
        insert(1, T0, 1),
        modify(2, T0 + 1, 2),
        # a scan reads the item at T0 + 2 (version 2) ...
        remove(2, T0 + 10, 3),
        insert(1, T0 + 20, 4, life="b"),
        # ... and its write reaches the sink only after the stream applied the delete and re-creation
        scan(2, read_at=T0 + 2, started=T0 + 1.5),
    ]
    assert shown(changes) == image(1, "b")  # was image(2, "a"): the deleted life came back


def test_a_late_scan_never_resurrects_an_item_deleted_again() -> None:
    changes = [
        insert(1, T0, 1),
        modify(2, T0 + 1, 2),
        remove(2, T0 + 10, 3),
        insert(1, T0 + 20, 4, life="b"),
        scan(2, read_at=T0 + 2, started=T0 + 1.5),
        remove(1, T0 + 30, 5, life="b"),
    ]
    assert shown(changes) is None  # was live, showing image(2, "a")


def test_keep_expired_re_creation_after_a_scan_only_state_appears() -> None:
    changes = [
        scan(3, read_at=T0 + 100, started=T0),
        insert(1, T0, 1),
        modify(2, T0 + 1, 2),
        modify(3, T0 + 2, 3),
        remove(3, T0 + 86_400, 4, expired=True),
        insert(1, T0 + 90_000, 5, life="b"),
    ]
    result = fold(ATTRIBUTE, None, changes, render_image, keep_expired=True)
    assert result.output == image(1, "b")  # was image(3, "a") until the new life passed version 3


def test_fold_reports_each_poison_change_once() -> None:
    broken = Change(dict(KEY), ChangeKind.MODIFY, {"order_id": "o-1"}, image(1), position(T0, 2))
    batch = [insert(1, T0, 1), broken, modify(2, T0, 3)]

    def render(change: Change) -> dict[str, Any] | None:
        if change is batch[2]:
            raise ValueError("unmappable")
        return change.image

    result = fold(ATTRIBUTE, None, batch, render)
    # was [broken, batch[2], broken]: two dead letters for one record
    assert [change for change, _ in result.poison] == [broken, batch[2]]


def test_stream_scheme_orders_records_of_one_second_across_a_billion_boundary() -> None:
    before = Change(
        dict(KEY), ChangeKind.MODIFY, image(2), image(1), StreamPosition(T0, str(SEQ + 999_999_998))
    )
    after = Change(dict(KEY), ChangeKind.REMOVE, None, image(2), StreamPosition(T0, str(SEQ + 1_000_000_003)))
    assert before.position is not None and after.position is not None
    assert before.position.sort_key < after.position.sort_key  # the stream's own order
    assert shown([before, after], STREAM) is None  # was live: the REMOVE ranked below the MODIFY
