"""Configuration: environment variables, validated once per cold start."""

from __future__ import annotations

from projector.config.exceptions import ConfigurationError
from projector.config.settings import Settings, load_settings

__all__ = ["ConfigurationError", "Settings", "load_settings"]
