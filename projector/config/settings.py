"""Settings from PROJECTOR_* environment variables (names fixed by CONTRACTS.md)."""

from __future__ import annotations

import re
from typing import Literal
from urllib.parse import urlparse

from pydantic import Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from projector.config.exceptions import ConfigurationError

_TABLE_NAME = re.compile(r"^[A-Za-z0-9_.-]{3,255}$")
_INDEX_PREFIX = re.compile(r"^[a-z0-9][a-z0-9_.-]*$|^$")


class Settings(BaseSettings):
    """Every knob projector reads from the environment. Local defaults point at the moto/OpenSearch servers."""

    model_config = SettingsConfigDict(env_prefix="PROJECTOR_", extra="ignore", frozen=True)

    opensearch_url: str = "http://127.0.0.1:9200"
    opensearch_auth: Literal["none", "sigv4"] = "none"
    opensearch_service: Literal["es", "aoss"] = "es"
    opensearch_timeout_s: float = Field(default=10.0, gt=0)
    opensearch_compress: bool = False  # gzip costs more Lambda CPU than it saves inside AWS's network
    dynamodb_endpoint: str | None = "http://127.0.0.1:5000"
    source_table: str = "orders"
    aggregates_table: str = "projector-aggregates"
    index_prefix: str = ""
    dead_letters: str = "file://.projector/dead-letters"
    projections: str = "projections"
    state_dir: str = ".projector"
    region: str = Field(default="us-east-1", validation_alias="AWS_REGION")
    deadline_margin_ms: int = Field(default=3000, ge=0)

    @field_validator("opensearch_url")
    @classmethod
    def _url(cls, value: str) -> str:
        parsed = urlparse(value)
        if parsed.scheme not in ("http", "https") or not parsed.hostname:
            raise ValueError(
                f"must be an http(s) URL such as https://search-domain.region.es.amazonaws.com, got {value!r}"
            )
        return value.rstrip("/")

    @field_validator("dynamodb_endpoint")
    @classmethod
    def _endpoint(cls, value: str | None) -> str | None:
        if value in (None, ""):
            return None
        parsed = urlparse(value)
        if parsed.scheme not in ("http", "https") or not parsed.hostname:
            raise ValueError(f"must be an http(s) URL or unset, got {value!r}")
        return value

    @field_validator("source_table", "aggregates_table")
    @classmethod
    def _table(cls, value: str) -> str:
        if not _TABLE_NAME.match(value):
            raise ValueError(f"not a valid DynamoDB table name: {value!r} (3-255 of A-Z a-z 0-9 _ . -)")
        return value

    @field_validator("index_prefix")
    @classmethod
    def _prefix(cls, value: str) -> str:
        if not _INDEX_PREFIX.match(value):
            raise ValueError(f"index names must be lowercase and start with a letter or digit, got {value!r}")
        return value

    @field_validator("dead_letters")
    @classmethod
    def _dead_letters(cls, value: str) -> str:
        parsed = urlparse(value)
        if parsed.scheme not in ("s3", "file") or (parsed.scheme == "s3" and not parsed.netloc):
            raise ValueError(f"must be s3://bucket/prefix or file:///path, got {value!r}")
        return value

    @property
    def opensearch_verify_certs(self) -> bool:
        return True


def load_settings() -> Settings:
    """Read the environment once, turning pydantic's report into one readable ConfigurationError."""
    try:
        return Settings()
    except ValidationError as error:
        problems = "; ".join(
            f"{_env_name(err['loc'])}: {err['msg'].removeprefix('Value error, ')}" for err in error.errors()
        )
        raise ConfigurationError(f"invalid configuration: {problems}") from None


def _env_name(location: tuple) -> str:
    field = str(location[0]) if location else "?"
    return "AWS_REGION" if field == "region" else f"PROJECTOR_{field.upper()}"
