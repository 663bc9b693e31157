"""The projections of this deployment. Every module here is loaded by the engine (PROJECTOR_PROJECTIONS)."""
