"""DynamoDB stream records: pydantic models of Lambda's event and a fast DynamoDB JSON decoder."""

from __future__ import annotations

from projector.records.decoder import decode_image, decode_value
from projector.records.exceptions import DecodeError, MalformedRecordError
from projector.records.types import StreamEvent, StreamRecord, StreamRecordData, UserIdentity, parse_record

__all__ = [
    "DecodeError",
    "MalformedRecordError",
    "StreamEvent",
    "StreamRecord",
    "StreamRecordData",
    "UserIdentity",
    "decode_image",
    "decode_value",
    "parse_record",
]
