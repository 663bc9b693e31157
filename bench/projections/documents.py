"""Only the ``orders`` search projection: the document path measured alone."""

from __future__ import annotations

from projections.orders import orders

__all__ = ["orders"]
