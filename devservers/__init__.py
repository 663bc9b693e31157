"""Local stand-ins for the AWS services projector talks to (test and demo infrastructure only).

OpenSearch, the moto server (through our own launcher), the Lambda Runtime Interface Emulator and
Toxiproxy, all bound to 127.0.0.1. `scripts/services` and the test fixtures drive them; projector
itself never imports this package.
"""

from __future__ import annotations
