"""The path of a batch: parse, decode, group per item, hand each projection's changes to its sink."""

from __future__ import annotations

from projector.pipeline.outcome import BatchOutcome
from projector.pipeline.processor import BatchProcessor

__all__ = ["BatchOutcome", "BatchProcessor"]
