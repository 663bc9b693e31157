from __future__ import annotations


class VersionError(ValueError):
    """A change carries no usable version (missing or malformed attribute): a poison record."""
