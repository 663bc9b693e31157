"""What a sink remembers per source item, so every write can be checked against it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class ItemState:
    """The versioned state of one item in one projection.

    ``life`` counts deletions followed by re-creation (attribute versions restart at 1 in a new life);
    ``rev`` orders changes within a life; ``deleted`` marks a tombstone, kept so a late change of a
    deleted item can never bring it back; ``position`` is the newest stream position applied (None if
    only a scan wrote it); ``seen_at`` is when the change behind this state happened (epoch seconds).
    ``digest`` is set only while the state comes from a scan the stream has not confirmed yet: the
    fingerprint of the scanned image, so the stream's own record of that state can be recognised
    (see projector/versioning/__init__.py).
    """

    life: int
    rev: int
    deleted: bool
    position: str | None
    seen_at: float
    digest: str | None = None

    @property
    def order(self) -> tuple[int, int, int]:
        return (self.life, self.rev, int(self.deleted))

    @property
    def scanned(self) -> bool:
        """Written by a scan and not yet placed in the stream (no stream record of it applied)."""
        return self.digest is not None

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "life": self.life,
            "rev": self.rev,
            "deleted": self.deleted,
            "position": self.position,
            "seen_at": self.seen_at,
        }
        if self.digest is not None:  # absent otherwise: stores written before it existed stay readable
            data["digest"] = self.digest
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ItemState:
        return cls(
            life=int(data["life"]),
            rev=int(data["rev"]),
            deleted=bool(data["deleted"]),
            position=data.get("position"),
            seen_at=float(data["seen_at"]),
            digest=data.get("digest"),
        )
