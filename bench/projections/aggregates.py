"""Only the two aggregate projections of the shop-orders example."""

from __future__ import annotations

from projections.orders import customer_totals, daily_sales

__all__ = ["customer_totals", "daily_sales"]
