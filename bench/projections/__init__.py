"""Projection modules for the bench (PROJECTOR_PROJECTIONS): the shop-orders example split by kind."""
