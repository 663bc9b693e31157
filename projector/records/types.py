"""Pydantic models of the DynamoDB stream event that Lambda's event source mapping delivers.

Images stay raw DynamoDB JSON (decoded on demand, see ``decoder``) so a record dumps back to exactly what
Lambda sent, for dead letters and replays. ``parse_record`` validates one record at a time: one bad record
must never cost the rest of its batch.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Literal, TypeVar, cast

from pydantic import (
    BaseModel,
    ConfigDict,
    InstanceOf,
    ValidationError,
    ValidationInfo,
    field_serializer,
    field_validator,
)

from projector.jsonsafe import jsonable
from projector.records.decoder import check_image, decode_image
from projector.records.exceptions import DecodeError, MalformedRecordError, format_path

__all__ = ["StreamEvent", "StreamRecord", "StreamRecordData", "UserIdentity", "parse_record"]

_TTL_PRINCIPAL = "dynamodb.amazonaws.com"
_T = TypeVar("_T")

if TYPE_CHECKING:
    _Image = dict[str, Any]
else:  # InstanceOf checks the type without copying: images are passed through untouched (and fast)
    _Image = InstanceOf[dict]


def _epoch_seconds(value: Any) -> float:
    """Lambda sends epoch seconds, boto3's GetRecords a ``datetime``, hand-written events ISO text."""
    seconds: float | None = None
    if isinstance(value, bool):
        seconds = None
    elif isinstance(value, int | float | Decimal):
        try:
            seconds = float(value)
        except (OverflowError, ValueError):  # a huge int, a signalling NaN
            seconds = None
    elif isinstance(value, datetime):
        seconds = (value if value.tzinfo else value.replace(tzinfo=UTC)).timestamp()
    elif isinstance(value, str):
        try:
            seconds = float(value)
        except ValueError:
            try:
                moment = datetime.fromisoformat(value)
            except ValueError:
                raise ValueError(f"{value!r} is neither epoch seconds nor an ISO 8601 timestamp") from None
            seconds = (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()
    if seconds is None or not math.isfinite(seconds):
        raise ValueError(f"must be epoch seconds, a datetime or an ISO 8601 string, got {value!r}")
    return seconds


class UserIdentity(BaseModel):
    """Who made the change; DynamoDB sets it only on deletes done by its TTL process."""

    model_config = ConfigDict(extra="allow")

    type: str
    principalId: str


class StreamRecordData(BaseModel):
    """The ``dynamodb`` part of a record. Keys and images are raw DynamoDB JSON."""

    model_config = ConfigDict(extra="allow")

    ApproximateCreationDateTime: float
    Keys: _Image
    NewImage: _Image | None = None
    OldImage: _Image | None = None
    SequenceNumber: str
    SizeBytes: int | None = None
    StreamViewType: Literal["KEYS_ONLY", "NEW_IMAGE", "OLD_IMAGE", "NEW_AND_OLD_IMAGES"] | None = None

    @field_validator("ApproximateCreationDateTime", mode="before")
    @classmethod
    def _timestamp(cls, value: Any) -> float:
        return _epoch_seconds(value)

    @field_validator("SequenceNumber")
    @classmethod
    def _sequence(cls, value: str) -> str:
        if not (value.isascii() and value.isdigit()):
            raise ValueError(f"must be a string of digits, got {value!r}")
        return value

    @field_validator("Keys")
    @classmethod
    def _keys(cls, value: dict[str, Any], info: ValidationInfo) -> dict[str, Any]:
        if not value:
            raise ValueError("must name at least one key attribute")
        decoded = decode_image(value)  # a DecodeError is a ValueError: parse_record reports its inner path
        if info.context is not None:
            info.context["keys"] = decoded  # parse_record keeps them: Keys are decoded once per record
        return value

    @field_serializer("ApproximateCreationDateTime")
    def _dump_timestamp(self, value: float) -> int | float:
        return int(value) if value.is_integer() else value

    @field_serializer("Keys", "NewImage", "OldImage", when_used="json-unless-none")
    def _dump_image(self, value: dict[str, Any]) -> dict[str, Any]:
        return cast(
            "dict[str, Any]", jsonable(value)
        )  # boto3's binaries are bytes; Lambda's JSON carries base64 text


class StreamRecord(BaseModel):
    """One record of a DynamoDB stream event, as Lambda or the GetRecords API delivers it."""

    model_config = ConfigDict(extra="allow")

    eventID: str
    eventName: Literal["INSERT", "MODIFY", "REMOVE"]
    eventVersion: str
    eventSource: str
    awsRegion: str
    eventSourceARN: str | None = None
    userIdentity: UserIdentity | None = None
    dynamodb: StreamRecordData

    # Plain slots, not PrivateAttrs: private attributes cost a Python call per validated record.
    __slots__ = ("_batch_index", "_keys")

    @property
    def sequence_number(self) -> str:
        return self.dynamodb.SequenceNumber

    @property
    def created_at(self) -> float:
        """ApproximateCreationDateTime as epoch seconds."""
        return self.dynamodb.ApproximateCreationDateTime

    @property
    def index(self) -> int | None:
        """Position in the batch it was parsed from, used to name the record in errors."""
        return getattr(self, "_batch_index", None)

    @property
    def is_ttl_delete(self) -> bool:
        """True when DynamoDB's TTL process, not an application, removed the item."""
        identity = self.userIdentity
        return (
            self.eventName == "REMOVE"
            and identity is not None
            and identity.type == "Service"
            and identity.principalId == _TTL_PRINCIPAL
        )

    def keys(self) -> dict[str, Any]:
        decoded: dict[str, Any] | None = getattr(self, "_keys", None)
        if decoded is not None:  # decoded by parse_record's validation; handed out once, never shared
            object.__setattr__(self, "_keys", None)
            return decoded
        return self._decode("Keys", self.dynamodb.Keys)  # type: ignore[return-value]

    def new_image(self) -> dict[str, Any] | None:
        return self._decode("NewImage", self.dynamodb.NewImage)

    def old_image(self) -> dict[str, Any] | None:
        return self._decode("OldImage", self.dynamodb.OldImage)

    def check_old_image(self, new_image: dict[str, Any]) -> None:
        """Raise what ``old_image()`` would, without decoding what the OldImage shares with the NewImage.

        ``new_image`` is this record's decoded NewImage. The change keeps the OldImage undecoded until
        something reads it, and a malformed one is still found here, while the record is parsed.
        """
        image, twin = self.dynamodb.OldImage, self.dynamodb.NewImage
        if image is not None and twin is not None:
            self._guarded("OldImage", check_image, image, twin, new_image)
        else:
            self.old_image()

    def to_lambda_json(self) -> dict[str, Any]:
        """The record as Lambda sends it: JSON types only, timestamp as epoch seconds, binaries base64."""
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)

    def _decode(self, name: str, image: dict[str, Any] | None) -> dict[str, Any] | None:
        if image is None:
            return None
        return self._guarded(name, decode_image, image)

    def _guarded(self, name: str, decode: Callable[..., _T], *args: Any) -> _T:
        """``decode(*args)`` for the image ``name``; a DecodeError becomes this record's MalformedRecordError."""
        try:
            return decode(*args)
        except DecodeError as error:
            reason = error.reason
            field = format_path(reversed(error.reversed_path), prefix=f"dynamodb.{name}")
        except RecursionError:  # DynamoDB nests 32 levels at most; this is not a real item
            reason = "attribute values are nested too deeply"
            field = f"dynamodb.{name}"
        raise MalformedRecordError(
            reason,
            record_index=self.index,
            sequence_number=self.dynamodb.SequenceNumber,
            event_id=self.eventID,
            field=field,
        )


class StreamEvent(BaseModel):
    """A whole Lambda event. Validation stops at the first bad record with a ``MalformedRecordError``;
    the engine uses ``parse_record`` instead so that one bad record never loses the batch."""

    model_config = ConfigDict(extra="allow")

    Records: list[StreamRecord]

    @field_validator("Records", mode="before")
    @classmethod
    def _records(cls, value: Any) -> Any:
        if not isinstance(value, list):
            return value  # pydantic reports the wrong type
        return [parse_record(raw, index) for index, raw in enumerate(value)]


def _set_index(record: StreamRecord, index: int) -> None:
    object.__setattr__(record, "_batch_index", index)  # skips pydantic's __setattr__ machinery


def parse_record(raw: Any, index: int) -> StreamRecord:
    """Validate one raw record; any problem is a ``MalformedRecordError`` naming the record and field."""
    if isinstance(raw, StreamRecord):
        _set_index(raw, index)
        return raw
    context: dict[str, Any] = {}
    try:
        record = StreamRecord.model_validate(raw, context=context)
    except ValidationError as exc:
        raise _malformed(raw, index, exc) from None
    _set_index(record, index)
    object.__setattr__(record, "_keys", context.get("keys"))
    return record


def _malformed(raw: Any, index: int, exc: ValidationError) -> MalformedRecordError:
    errors = exc.errors(include_url=False)
    first = errors[0]
    field = format_path(first["loc"]) or None
    reason = _reason(first)
    error = (first.get("ctx") or {}).get("error")
    if isinstance(error, DecodeError):
        field = format_path(reversed(error.reversed_path), prefix=field or "")
        reason = error.reason
    if len(errors) > 1:
        reason = f"{reason} (and {len(errors) - 1} more problem{'s' if len(errors) > 2 else ''})"
    sequence_number, event_id = _identity(raw)
    return MalformedRecordError(
        reason, record_index=index, sequence_number=sequence_number, event_id=event_id, field=field
    )


_IMAGES = frozenset({"Keys", "NewImage", "OldImage"})


def _reason(error: Any) -> str:
    kind = error["type"]
    if kind == "missing":
        return "required field is missing"
    if kind == "value_error":
        return str(error["ctx"]["error"])
    if _IMAGES.intersection(str(part) for part in error["loc"]):
        shown = type(error["input"]).__name__  # inside an image: the value is item data, never shown
    else:
        shown = repr(error["input"])
        if len(shown) > 60:
            shown = f"{shown[:57]}..."
    return f"{error['msg']}, got {shown}"


def _identity(raw: Any) -> tuple[str | None, str | None]:
    """Best-effort sequence number and event id of a record that failed validation."""
    if not isinstance(raw, dict):
        return None, None
    event_id = raw.get("eventID")
    data = raw.get("dynamodb")
    sequence = data.get("SequenceNumber") if isinstance(data, dict) else None
    return (
        str(sequence) if isinstance(sequence, str | int) and not isinstance(sequence, bool) else None,
        event_id if isinstance(event_id, str) else None,
    )
