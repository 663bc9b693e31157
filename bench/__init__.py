"""The projector benchmark harness: each case measured against its baseline in the same run (scripts/bench)."""
