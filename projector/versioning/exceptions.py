from __future__ import annotations

from projector.exceptions import ProjectorError


class VersionError(ProjectorError, ValueError):
    """A change carries no usable version (missing or malformed attribute): a poison record."""
