"""Version schemes: how a change is ranked against the stored state of its item.

Both schemes give a total order that the sinks also enforce on the server (OpenSearch external
versions, DynamoDB conditions), so two writers racing can never leave the older state behind.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from decimal import Decimal

from projector.changes.types import Change, ChangeKind
from projector.projection.base import ATTRIBUTE_VERSION_BITS, AttributeVersion, StreamPositionVersion
from projector.versioning.exceptions import VersionError
from projector.versioning.state import ItemState

# A scanned item read this long after a delete's stream timestamp is taken as a new life; closer than
# that the scan may have read the old life, so the backfill leaves it to the stream (which carries the
# re-creation anyway). Covers ApproximateCreationDateTime's rounding and modest clock skew.
LIFE_MARGIN_S = 5.0
_MAX_ATTRIBUTE_VERSION = (1 << ATTRIBUTE_VERSION_BITS) - 1
_SEQUENCE_DIGITS = 10**9


class VersionScheme(ABC):
    """Ranks changes and states; ``advance`` answers the new state, or None when the change is stale."""

    @abstractmethod
    def revision(self, change: Change) -> int: ...

    @abstractmethod
    def advance(self, state: ItemState | None, change: Change) -> ItemState | None: ...

    @abstractmethod
    def external_version(self, state: ItemState) -> int:
        """A 63-bit number that grows with the state order, for OpenSearch's external versioning."""

    def _new_state(self, change: Change, life: int, rev: int, previous: ItemState | None) -> ItemState:
        position = change.position.sort_key if change.position else None
        if previous is not None and previous.position is not None:
            position = max(position, previous.position) if position else previous.position
        return ItemState(life=life, rev=rev, deleted=change.kind is ChangeKind.REMOVE, position=position,
                         seen_at=change.happened_at)


class AttributeScheme(VersionScheme):
    """Versions from an item attribute; deletes and re-creations are told apart by stream position."""

    def __init__(self, attribute: str) -> None:
        self.attribute = attribute

    def revision(self, change: Change) -> int:
        image = change.old_image if change.kind is ChangeKind.REMOVE else change.new_image
        if image is None:
            side = "OldImage" if change.kind is ChangeKind.REMOVE else "NewImage"
            raise VersionError(f"{change.kind} without {side}: the stream view type must be NEW_AND_OLD_IMAGES")
        value = image.get(self.attribute)
        if value is None:
            raise VersionError(f"item has no {self.attribute!r} attribute to order its changes by "
                               "(use StreamPositionVersion for tables without one)")
        if isinstance(value, bool) or not isinstance(value, Decimal | int) or value != int(value):
            raise VersionError(f"attribute {self.attribute!r} must be a whole number, got {value!r}")
        number = int(value)
        if not 0 <= number <= _MAX_ATTRIBUTE_VERSION:
            raise VersionError(f"attribute {self.attribute!r} must be within 0..{_MAX_ATTRIBUTE_VERSION}, got {number}")
        return number

    def advance(self, state: ItemState | None, change: Change) -> ItemState | None:
        rev = self.revision(change)
        if state is None:
            return self._new_state(change, 0, rev, None)
        position = change.position.sort_key if change.position else None
        if position is not None and state.position is not None and position <= state.position:
            return None
        if state.deleted:
            if self._after_tombstone(state, change, position):
                return self._new_state(change, state.life + 1, rev, state)
            return None
        if change.kind is ChangeKind.INSERT and position is not None and state.position is not None:
            # An INSERT later in the stream than a live state: the REMOVE between them never reached us.
            return self._new_state(change, state.life + 1, rev, state)
        if (rev, int(change.kind is ChangeKind.REMOVE)) > (state.rev, int(state.deleted)):
            return self._new_state(change, state.life, rev, state)
        return None

    @staticmethod
    def _after_tombstone(state: ItemState, change: Change, position: str | None) -> bool:
        if position is not None and state.position is not None:
            return True  # already known to be later in the stream than the delete
        return change.happened_at > state.seen_at + LIFE_MARGIN_S

    def external_version(self, state: ItemState) -> int:
        return (state.life << (ATTRIBUTE_VERSION_BITS + 1)) | (state.rev << 1) | int(state.deleted)


class StreamScheme(VersionScheme):
    """Versions from the stream position: whole seconds, then the low 9 digits of the sequence number.

    A backfill ranks below every change made after its scan started, so the stream always wins a race.
    """

    def revision(self, change: Change) -> int:
        if change.position is not None:
            try:
                sequence = int(change.position.sequence)
            except ValueError:
                raise VersionError(f"SequenceNumber {change.position.sequence!r} is not a number") from None
            return int(change.position.created_at) * _SEQUENCE_DIGITS + sequence % _SEQUENCE_DIGITS
        assert change.backfill is not None
        return int(change.backfill.scan_started_at) * _SEQUENCE_DIGITS - 1

    def advance(self, state: ItemState | None, change: Change) -> ItemState | None:
        rev = self.revision(change)
        deleted = int(change.kind is ChangeKind.REMOVE)
        if state is None or (rev, deleted) > (state.rev, int(state.deleted)):
            return self._new_state(change, 0, rev, state)
        return None

    def external_version(self, state: ItemState) -> int:
        return (state.rev << 1) | int(state.deleted)


def scheme_for(policy: AttributeVersion | StreamPositionVersion) -> VersionScheme:
    if isinstance(policy, AttributeVersion):
        return AttributeScheme(policy.attribute)
    return StreamScheme()
