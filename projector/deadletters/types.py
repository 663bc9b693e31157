from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, Field


def _new_id() -> str:
    now = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
    return f"{now}-{uuid.uuid4().hex[:12]}"


class DeadLetter(BaseModel):
    """One poison record: the whole record as Lambda delivered it, and why it could not be applied."""

    id: str = Field(default_factory=_new_id)
    created_at: str = Field(default_factory=lambda: datetime.now(UTC).isoformat())
    reason: Literal["malformed", "poison", "retries_exhausted"]
    projection: str | None = None
    error: str
    sequence_number: str | None = None
    event_source_arn: str | None = None
    record: Any
