"""Helpers shared by the integration tests: real stream records, source-table truth, projection reads."""
