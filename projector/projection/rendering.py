"""What rendering a change answers: its output, or ``Rejected`` with why.

Rendering turns a change into what a store writes (a search document, aggregate contributions, the next
document of an event stream). One type says "this change cannot be applied" everywhere, so a rejection
travels as a value: the fold drops the change, the apply path dead-letters it, nothing raises.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import ParamSpec, TypeVar

T = TypeVar("T")
P = ParamSpec("P")


@dataclass(frozen=True, slots=True)
class Rejected:
    """A change that cannot be applied (bad input, a projection error, a write its store cannot hold):
    poison, dead-lettered whole with ``reason``."""

    reason: str


def guarded(render: Callable[P, T | Rejected], *args: P.args, **kwargs: P.kwargs) -> T | Rejected:
    """``render``'s answer, with an exception it raises (a projection bug, an item it cannot map) as
    ``Rejected``: one bad change is poison, never the batch."""
    try:
        return render(*args, **kwargs)
    except Exception as error:
        return Rejected(f"projection failed: {type(error).__name__}: {error}")
