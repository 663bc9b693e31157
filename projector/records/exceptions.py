"""Typed errors for stream records that cannot be read, each rendered as one clear line."""

from __future__ import annotations

from typing import Any

from projector.exceptions import ProjectorError


def _rebuild(cls: type[MalformedRecordError], state: dict[str, Any]) -> MalformedRecordError:
    error = cls.__new__(cls)
    error.__dict__.update(state)
    return error


class MalformedRecordError(ProjectorError):
    """One stream record is unusable: it goes to the dead letters, the rest of the batch carries on."""

    def __init__(
        self,
        reason: str,
        *,
        record_index: int | None = None,
        sequence_number: str | None = None,
        event_id: str | None = None,
        field: str | None = None,
    ) -> None:
        super().__init__(reason)
        self.reason = reason
        self.record_index = record_index
        self.sequence_number = sequence_number
        self.event_id = event_id
        self._field = field

    @property
    def field(self) -> str | None:
        """Dotted path of the offending attribute, e.g. ``dynamodb.NewImage.items[2].price``."""
        return self._field

    def __str__(self) -> str:
        ids = []
        if self.sequence_number is not None:
            ids.append(f"seq {self.sequence_number}")
        if self.event_id is not None:
            ids.append(f"event {self.event_id}")
        head = "record" if self.record_index is None else f"record {self.record_index}"
        if ids:
            head = f"{head} ({', '.join(ids)})"
        elif self.record_index is None:
            head = ""
        field = self.field
        parts = [part for part in (head, field, self.reason) if part]
        return ": ".join(parts)

    def __reduce__(self) -> tuple[Any, ...]:
        # Keyword-only constructor arguments would break the default Exception pickling.
        return (_rebuild, (type(self), dict(self.__dict__)))


class DecodeError(MalformedRecordError, ValueError):
    """A DynamoDB JSON attribute value is malformed; ``field`` is its path inside the decoded value.

    The path is collected innermost-first while the error unwinds, so the happy path never builds it.
    """

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reversed_path: list[str | int] = []

    @property
    def field(self) -> str | None:
        return format_path(reversed(self.reversed_path)) or None


def format_path(segments: Any, prefix: str = "") -> str:
    """Join keys and list indexes as ``a.b[2].c``; keys that are not identifiers are quoted."""
    out = prefix
    for segment in segments:
        if isinstance(segment, int):
            out += f"[{segment}]"
        elif isinstance(segment, str) and segment.isidentifier():
            out += f".{segment}" if out else segment
        else:
            out += f"[{segment!r}]"
    return out
