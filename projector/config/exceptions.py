from __future__ import annotations

from projector.exceptions import ProjectorError


class ConfigurationError(ProjectorError):
    """The environment or a projection definition is wrong; raised at cold start with one clear line."""
