"""The `projector` command line."""
