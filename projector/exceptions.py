"""The one base of projector's errors.

A caller that wants "anything projector refused or could not do" catches one type, ``ProjectorError``,
instead of a list that grows with every module. Each error keeps its other bases (``ValueError`` for bad
input, ``RuntimeError`` for a wrong state, botocore's ``BotoCoreError`` for a cut-short answer), so every
existing ``except`` still means what it meant. Private control-flow signals (raised and caught inside one
module to drive a retry) are not errors a caller sees and stay outside this tree.
"""

from __future__ import annotations


class ProjectorError(Exception):
    """Base of every error projector raises on purpose."""
