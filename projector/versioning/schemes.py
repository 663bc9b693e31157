"""Version schemes: how a change is ranked against the stored state of its item.

Both schemes give a total order that the sinks also enforce on the server (OpenSearch external
versions, DynamoDB conditions), so two writers racing can never leave the older state behind.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from decimal import Decimal

from projector.changes.types import Change, ChangeKind, StreamPosition
from projector.projection.base import ATTRIBUTE_VERSION_BITS, AttributeVersion, StreamPositionVersion
from projector.versioning.digest import image_digest
from projector.versioning.exceptions import VersionError
from projector.versioning.state import ItemState

# A scanned item read this long after a delete's stream timestamp is taken as a new life; closer than
# that the scan may have read the old life, so the backfill leaves it to the stream (which carries the
# re-creation anyway). Covers ApproximateCreationDateTime's rounding and modest clock skew.
LIFE_MARGIN_S = 5.0
_MAX_ATTRIBUTE_VERSION = (1 << ATTRIBUTE_VERSION_BITS) - 1
# The external version packs life, rev (ATTRIBUTE_VERSION_BITS), deleted and placed into 63 bits.
MAX_LIFE = (1 << (63 - ATTRIBUTE_VERSION_BITS - 2)) - 1


class VersionScheme(ABC):
    """Ranks changes and states; ``advance`` answers the new state, or None when the change is stale."""

    @abstractmethod
    def revision(self, change: Change) -> int: ...

    @abstractmethod
    def advance(self, state: ItemState | None, change: Change) -> ItemState | None: ...

    @abstractmethod
    def external_version(self, state: ItemState) -> int:
        """A 63-bit number that grows with the state order, for OpenSearch's external versioning."""

    def confirm(self, state: ItemState | None, change: Change) -> ItemState | None:
        """For a TTL delete the projection keeps: the stored state placed at the delete's stream position
        when it is an unplaced scanned state and the delete removed exactly that image; else None."""
        return None

    def _new_state(self, change: Change, life: int, rev: int, previous: ItemState | None) -> ItemState:
        position = change.position.sort_key if change.position else None
        if previous is not None and previous.position is not None:
            position = max(position, previous.position) if position else previous.position
        return ItemState(
            life=life,
            rev=rev,
            deleted=change.kind is ChangeKind.REMOVE,
            position=position,
            seen_at=change.happened_at,
        )


class AttributeScheme(VersionScheme):
    """Versions from an item attribute; lives told apart by stream position. The rules and their proof
    sketch are in the package docstring (projector/versioning/__init__.py) and docs/versioning.md."""

    def __init__(self, attribute: str) -> None:
        self.attribute = attribute

    def revision(self, change: Change) -> int:
        image = change.old_image if change.kind is ChangeKind.REMOVE else change.new_image
        if image is None:
            side = "OldImage" if change.kind is ChangeKind.REMOVE else "NewImage"
            raise VersionError(
                f"{change.kind} without {side}: the stream view type must be NEW_AND_OLD_IMAGES"
            )
        value = image.get(self.attribute)
        if value is None:
            raise VersionError(
                f"item has no {self.attribute!r} attribute to order its changes by "
                "(use StreamPositionVersion for tables without one)"
            )
        if isinstance(value, bool) or not isinstance(value, Decimal | int) or value != int(value):
            raise VersionError(f"attribute {self.attribute!r} must be a whole number, got {value!r}")
        number = int(value)
        if not 0 <= number <= _MAX_ATTRIBUTE_VERSION:
            raise VersionError(
                f"attribute {self.attribute!r} must be within 0..{_MAX_ATTRIBUTE_VERSION}, got {number}"
            )
        return number

    def advance(self, state: ItemState | None, change: Change) -> ItemState | None:
        rev = self.revision(change)
        if change.backfill is not None:
            return self._scanned(state, change, rev)
        if state is None:
            return self._new_state(change, 0, rev, None)
        position = change.position.sort_key if change.position else None
        if position is not None and state.position is not None and position <= state.position:
            return None  # rule 1: at or before what is stored, in the stream's own order
        if state.deleted:
            if self._after_tombstone(state, change, position):
                return self._next_life(change, state, rev)
            return None
        if state.scanned:
            return self._against_scan(state, change, rev, position)
        if change.kind is ChangeKind.INSERT and (
            state.position is not None or change.happened_at >= state.seen_at - LIFE_MARGIN_S
        ):
            # An INSERT later in the stream than a live state: the REMOVE between them never reached us,
            # or was skipped (keep_expired). A new life. (Without a position: a state an older release
            # or a repair wrote; not clearly older than it counts as later.)
            return self._next_life(change, state, rev)
        if (rev, int(change.kind is ChangeKind.REMOVE)) > (state.rev, int(state.deleted)):
            return self._new_state(change, state.life, rev, state)
        return None

    def confirm(self, state: ItemState | None, change: Change) -> ItemState | None:
        if state is None or not state.scanned or state.deleted or change.position is None:
            return None
        position = change.position.sort_key
        if state.position is not None and position <= state.position:
            return None
        image = change.old_image if change.kind is ChangeKind.REMOVE else change.new_image
        if image is None or image_digest(image) != state.digest:
            return None
        return self._placed(state, change, position)

    def _scanned(self, state: ItemState | None, change: Change, rev: int) -> ItemState | None:
        """A scanned image: taken only when it is surely newer than the stored state (rule 2)."""
        if state is None:
            return self._scan_state(change, 0, rev, None)
        if change.happened_at <= state.seen_at + LIFE_MARGIN_S:
            # Read before (or too close to) the change behind the stored state: the scan may have seen
            # an ended life, and anything newer than the stored state is still on its way in the stream.
            return None
        # Read clearly after the stored state was made: the scan saw that state or a later one.
        if state.deleted or rev < state.rev:
            self._check_life(state.life + 1)  # the item is live again, or at a lower version: a later life
            return self._scan_state(change, state.life + 1, rev, state)
        if rev > state.rev:
            return self._scan_state(change, state.life, rev, state)
        return None  # the same version: that very state (or a later life at it), left to the stream

    def _against_scan(
        self, state: ItemState, change: Change, rev: int, position: str | None
    ) -> ItemState | None:
        """A stream change against a scanned state the stream has not placed yet (rule 3).

        Every change made before the read is in the scanned image already, and the first change made after
        it is the one whose old image is the scanned image; the stream delivers that one before any later
        change of the item. So only the state's own record (placing it) or its successor may advance it.
        """
        if change.kind is not ChangeKind.REMOVE and image_digest(change.new_image) == state.digest:
            assert position is not None
            return self._placed(state, change, position)  # the stream's record of the scanned state
        if change.kind is not ChangeKind.INSERT and image_digest(change.old_image) == state.digest:
            if (rev, int(change.kind is ChangeKind.REMOVE)) > (state.rev, 0):
                return self._new_state(change, state.life, rev, state)  # its successor
            return None
        if change.happened_at > state.seen_at + LIFE_MARGIN_S:
            # Made clearly after the read, yet not its successor (that one was lost, or skipped as an
            # expired delete): a later state for sure, so a new life keeps every version growing.
            return self._next_life(change, state, rev)
        return None  # made before the read (the scan includes it), or too close to it to tell

    def _next_life(self, change: Change, state: ItemState, rev: int) -> ItemState:
        self._check_life(state.life + 1)
        return self._new_state(change, state.life + 1, rev, state)

    @staticmethod
    def _placed(state: ItemState, change: Change, position: str) -> ItemState:
        """``state`` unchanged, now known to be the state the change at ``position`` made."""
        return ItemState(
            life=state.life,
            rev=state.rev,
            deleted=state.deleted,
            position=position,
            seen_at=max(state.seen_at, change.happened_at),
        )

    def _scan_state(self, change: Change, life: int, rev: int, previous: ItemState | None) -> ItemState:
        assert change.new_image is not None
        return ItemState(
            life=life,
            rev=rev,
            deleted=False,
            position=previous.position if previous is not None else None,
            seen_at=change.happened_at,
            digest=image_digest(change.new_image),
        )

    @staticmethod
    def _check_life(life: int) -> None:
        if life > MAX_LIFE:
            raise VersionError(
                f"the item was deleted and re-created {MAX_LIFE:,} times, the most one projection can "
                "order by a version attribute; rebuild the projection (backfill --rebuild) to start "
                "every item at life 0 again"
            )

    @staticmethod
    def _after_tombstone(state: ItemState, change: Change, position: str | None) -> bool:
        if position is not None and state.position is not None:
            return True  # already known to be later in the stream than the delete
        return change.happened_at > state.seen_at + LIFE_MARGIN_S

    def external_version(self, state: ItemState) -> int:
        """``life | rev | deleted | placed``: the state order, plus one bit that grows when the stream
        confirms a scanned state (so that write is accepted too)."""
        return (
            (state.life << (ATTRIBUTE_VERSION_BITS + 2))
            | (state.rev << 2)
            | (int(state.deleted) << 1)
            | int(not state.scanned)
        )


class StreamScheme(VersionScheme):
    """Versions from the stream position: ApproximateCreationDateTime's second, then the sequence number.

    Changes are ordered by their exact position (whole seconds, then the full sequence number). The
    external version is ``second << 29`` for the first change of an item in a second and the stored
    version + 1 for each later change of it in that second, so it grows with the position order and
    survives restarts (it is derived from what is stored, never from a counter in memory). A backfill
    ranks at the end of the second before its scan started: below every change made after that.
    """

    SUBSECOND_BITS = 29

    def revision(self, change: Change) -> int:
        return StreamPosition.seconds_of(self._position(change)) << self.SUBSECOND_BITS

    @staticmethod
    def _position(change: Change) -> str:
        if change.position is not None:
            try:
                return change.position.sort_key
            except ValueError:
                raise VersionError(f"SequenceNumber {change.position.sequence!r} is not a number") from None
        assert change.backfill is not None
        return f"{int(change.backfill.scan_started_at) - 1:012d}:{'9' * 40}"

    def advance(self, state: ItemState | None, change: Change) -> ItemState | None:
        position = self._position(change)
        if state is not None and state.position is not None and position <= state.position:
            return None
        base = StreamPosition.seconds_of(position) << self.SUBSECOND_BITS
        rev = base if state is None else max(state.rev + 1, base)
        return ItemState(
            life=0,
            rev=rev,
            deleted=change.kind is ChangeKind.REMOVE,
            position=position,
            seen_at=change.happened_at,
        )

    def external_version(self, state: ItemState) -> int:
        return state.rev


def scheme_for(policy: AttributeVersion | StreamPositionVersion) -> VersionScheme:
    if isinstance(policy, AttributeVersion):
        return AttributeScheme(policy.attribute)
    return StreamScheme()
