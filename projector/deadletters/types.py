from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, Field, field_validator

#: Every letter id, and so every file or object name a store reads or moves: no dots, no slashes.
LETTER_ID = re.compile(r"^[0-9A-Za-z][0-9A-Za-z_-]{0,127}$")


def check_letter_id(value: str) -> str:
    """The id itself, or ValueError: an id names a file, so ``../x`` must never reach the file system."""
    if not isinstance(value, str) or not LETTER_ID.match(value):
        raise ValueError(f"not a dead-letter id (1-128 of A-Z a-z 0-9 _ -): {value!r}")
    return value


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

    @field_validator("id")
    @classmethod
    def _id(cls, value: str) -> str:
        return check_letter_id(value)


@dataclass(frozen=True, slots=True)
class BadLetter:
    """An entry a store could not read as a letter (bad name, bad JSON): reported and skipped."""

    name: str
    location: str
    error: str
