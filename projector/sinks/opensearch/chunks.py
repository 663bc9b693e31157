"""Bulk bodies split by size: OpenSearch refuses a request over ``http.max_content_length``."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TypeVar

T = TypeVar("T")


def by_size(entries: Sequence[T], size_of: Callable[[T], int], limit: int) -> list[list[T]]:
    """``entries`` in order, cut into runs of at most ``limit`` bytes (an entry larger alone stays alone)."""
    chunks: list[list[T]] = []
    current: list[T] = []
    size = 0
    for entry in entries:
        length = size_of(entry)
        if current and size + length > limit:
            chunks.append(current)
            current, size = [], 0
        current.append(entry)
        size += length
    if current:
        chunks.append(current)
    return chunks
