from __future__ import annotations


class ConfigurationError(Exception):
    """The environment or a projection definition is wrong; raised at cold start with one clear line."""
