"""The local servers by name, and which ones `scripts/services start` runs by default."""

from __future__ import annotations

import logging

from devservers.moto import Moto
from devservers.opensearch import OpenSearch
from devservers.process import ServiceError
from devservers.rie import Rie
from devservers.service import Service
from devservers.toxiproxy import Toxiproxy

logger = logging.getLogger(__name__)

NAMES: tuple[str, ...] = ("opensearch", "moto", "rie", "toxiproxy")
#: RIE and Toxiproxy are started on demand by the tests that need them.
DEFAULT: tuple[str, ...] = ("opensearch", "moto")


def get(name: str) -> Service:
    """A fresh handle on the server NAME."""
    factories = {"opensearch": OpenSearch, "moto": Moto, "rie": Rie, "toxiproxy": Toxiproxy}
    try:
        return factories[name]()
    except KeyError:
        raise ServiceError(f"unknown server {name!r} (known: {', '.join(NAMES)})") from None
