"""Dead letters: poison records kept whole, never overwritten, replayable through the same versioned path."""

from __future__ import annotations

from projector.deadletters.store import DeadLetterStore, FileDeadLetterStore, S3DeadLetterStore, open_store
from projector.deadletters.types import DeadLetter

__all__ = ["DeadLetter", "DeadLetterStore", "FileDeadLetterStore", "S3DeadLetterStore", "open_store"]
