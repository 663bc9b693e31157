"""What verify asks of every kind of projection: one check object per projection, fed page by page.

The verifier scans the source table once and hands each page to every check (``add``); after the scan
each check finds its first-pass candidates (``first_pass``, batched per check class so that, say, all
aggregate rows are read in one scan); after the settle wait it re-reads them and keeps what is stable
(``settle``); ``repair`` puts the stable drift right. Which check class a projection gets is its store
kind's entry in ``projector.stores.kinds``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from projector.projection.base import Projection
    from projector.source.items import Source
    from projector.verify.types import Verdict

# Rebuilds one projection from the source table: (projection, segments) -> (status, build now read).
Rebuild = Callable[["Projection", int], tuple[str, "str | None"]]


class ProjectionCheck(ABC):
    """Compares one projection's stored results with the source items; thread-safe ``add``."""

    projection: Any  # a check class is built as ``Check(runtime, projection)``

    @abstractmethod
    def add(self, items: list[dict[str, Any]], read_at: float) -> None:
        """One page of decoded source items, read at ``read_at`` (from scan worker threads)."""

    @abstractmethod
    def first_pass(self) -> int:
        """After the scan: find and keep the candidates (disagreements); how many there are."""

    @classmethod
    def first_passes(cls, checks: Sequence[ProjectionCheck]) -> int:
        """``first_pass`` of several checks of this class at once (a class may share reads among them)."""
        return sum(check.first_pass() for check in checks)

    @abstractmethod
    def settle(self, source: Source, checked: int) -> Verdict:
        """After the settle wait: re-read the candidates; the verdict holds what is stable drift.
        ``checked`` is how many source items the scan read."""

    def backwards(self, verdict: Verdict, source: Source) -> int:
        """How much of the drift comes from source versions going back (a restored table)."""
        return 0

    @abstractmethod
    def repair(self, verdict: Verdict, rebuild: Rebuild | None, segments: int) -> tuple[int, str | None]:
        """Put the stable drift right; (how many repaired, a note for the report)."""
