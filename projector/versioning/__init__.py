"""The one place that decides what a version is and whether a change is newer than what is stored."""

from __future__ import annotations

from projector.versioning.exceptions import VersionError
from projector.versioning.fold import FoldResult, fold
from projector.versioning.schemes import AttributeScheme, StreamScheme, VersionScheme, scheme_for
from projector.versioning.state import ItemState

__all__ = [
    "AttributeScheme",
    "FoldResult",
    "ItemState",
    "StreamScheme",
    "VersionError",
    "VersionScheme",
    "fold",
    "scheme_for",
]
