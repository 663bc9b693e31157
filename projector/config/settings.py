"""Settings from PROJECTOR_* environment variables and the standard AWS ones (region, profile).

A plain pydantic model that reads ``os.environ`` itself, as pydantic-settings would (names matched
case-insensitively, arguments before variables, defaults validated): importing pydantic-settings costs
the handler's cold start ~50-90 ms (asyncio, argparse, dotenv) for nothing these fields need.
"""

from __future__ import annotations

import os
import re
from typing import Any, Literal
from urllib.parse import urlparse

from pydantic import (
    AliasChoices,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from projector.config.exceptions import ConfigurationError

_TABLE_NAME = re.compile(r"^[A-Za-z0-9_.-]{3,255}$")
_INDEX_PREFIX = re.compile(r"^[a-z0-9][a-z0-9_.-]*$|^$")


ENV_PREFIX = "PROJECTOR_"


class Settings(BaseModel):
    """Every knob projector reads from the environment. Local defaults point at the moto/OpenSearch servers."""

    model_config = ConfigDict(extra="ignore", frozen=True, validate_default=True)

    opensearch_url: str = Field(
        default="http://127.0.0.1:9200",
        description="OpenSearch endpoint; in AWS the domain's `https://` URL (required with `sigv4`)",
    )
    opensearch_auth: Literal["none", "sigv4"] = Field(
        default="none",
        description="`none`, or `sigv4`: requests signed with the AWS credentials (refused over `http://` "
        "to a host that is not on this machine)",
    )
    opensearch_service: Literal["es", "aoss"] = Field(
        default="es", description="SigV4 service name: `es` for managed domains (Serverless is not supported)"
    )
    opensearch_timeout_s: float = Field(default=10.0, gt=0, description="timeout of one OpenSearch request")
    opensearch_compress: bool = Field(
        default=False,  # gzip costs more Lambda CPU than it saves inside AWS's network
        description="gzip request bodies (the SigV4 signature then covers the compressed bytes)",
    )
    dynamodb_endpoint: str | None = Field(
        default="http://127.0.0.1:5000",
        description="DynamoDB and DynamoDB Streams endpoint override; set it empty for the AWS endpoints",
    )
    source_table: str = Field(default="orders", description="the table whose stream is projected")
    aggregates_table: str = Field(
        default="projector-aggregates", description="the table holding aggregate projections"
    )
    index_prefix: str = Field(
        default="", description="prefix of every index, alias and template name (the template requires one)"
    )
    dead_letters: str = Field(
        default="file://.projector/dead-letters",
        description="where poison records go: `s3://bucket/prefix` in AWS, `file:///path` locally "
        "(files 0600 in 0700 folders)",
    )
    projections: str = Field(
        default="projections", description="comma-separated modules or packages holding the projections"
    )
    state_dir: str = Field(default=".projector", description="runner and backfill checkpoints")
    # The standard AWS chain: AWS_REGION, then AWS_DEFAULT_REGION, then the profile (AWS_PROFILE's
    # config file). Only when every endpoint is on this machine does a missing region mean LOCAL_REGION.
    region: str = Field(
        default="",
        validation_alias=AliasChoices("AWS_REGION", "AWS_DEFAULT_REGION"),
        description="region of every AWS client: `AWS_REGION`, else `AWS_DEFAULT_REGION`, else the "
        "profile's (`AWS_PROFILE`); with no region, an endpoint not on this machine is an error",
    )
    deadline_margin_ms: int = Field(
        default=3000, ge=0, description="time kept back from Lambda's deadline for answering"
    )

    @model_validator(mode="before")
    @classmethod
    def _environment(cls, data: Any) -> Any:
        """Each field not given as an argument from its variable: ``PROJECTOR_<FIELD>``, or its aliases."""
        if not isinstance(data, dict):
            return data
        environ = {name.upper(): value for name, value in os.environ.items()}
        merged: dict[str, Any] = {}
        for field, info in cls.model_fields.items():
            names = env_names(field, info.validation_alias)
            if field in data or any(name in data for name in names):
                continue
            for name in names:
                if name in environ:
                    # Under the alias when the field has one (pydantic then picks the first alias present).
                    merged[name if info.validation_alias is not None else field] = environ[name]
        merged.update(data)
        return merged

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

    @model_validator(mode="after")
    def _aws(self) -> Settings:
        """Outside this machine nothing is guessed: SigV4 needs TLS, an endpoint and a region."""
        remote_search = not is_loopback(self.opensearch_url)
        if self.opensearch_auth == "sigv4" and remote_search and self.opensearch_url.startswith("http://"):
            raise ValueError(
                "PROJECTOR_OPENSEARCH_URL: sigv4 needs https:// for a host that is not on this machine "
                f"(signed requests and documents would cross the network in clear), got {self.opensearch_url}"
            )
        if self.opensearch_auth == "sigv4" and "opensearch_url" not in self.model_fields_set:
            raise ValueError("PROJECTOR_OPENSEARCH_URL: sigv4 is set but the domain's https:// URL is not")
        remote_dynamodb = self.dynamodb_endpoint is None or not is_loopback(self.dynamodb_endpoint)
        # One side in AWS and the other left at its local default: a forgotten variable, not a choice.
        if remote_search and not remote_dynamodb and "dynamodb_endpoint" not in self.model_fields_set:
            raise ValueError(
                "PROJECTOR_DYNAMODB_ENDPOINT: OpenSearch is not on this machine but DynamoDB would be the "
                "local default; set it empty for the AWS endpoints (or to the endpoint you mean)"
            )
        if remote_dynamodb and not remote_search and "opensearch_url" not in self.model_fields_set:
            raise ValueError(
                "PROJECTOR_OPENSEARCH_URL: DynamoDB is AWS's but OpenSearch would be the local default; "
                "set the domain's https:// URL"
            )
        if not self.region:
            region = _profile_region()
            if not region:
                if remote_search or self.dynamodb_endpoint is None or not is_loopback(self.dynamodb_endpoint):
                    raise ValueError(
                        "AWS_REGION: no region set (AWS_REGION, AWS_DEFAULT_REGION or the profile's "
                        "region) and an endpoint is not on this machine"
                    )
                region = LOCAL_REGION
            object.__setattr__(self, "region", region)
        return self

    @property
    def opensearch_verify_certs(self) -> bool:
        return True


def env_names(field: str, alias: Any = None) -> list[str]:
    """The variables a field is read from, in order: its aliases, else ``PROJECTOR_<FIELD>``."""
    if isinstance(alias, AliasChoices):
        return [str(choice) for choice in alias.choices]
    if isinstance(alias, str):
        return [alias]
    return [f"{ENV_PREFIX}{field.upper()}"]


LOCAL_REGION = "us-east-1"
LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1"})


def is_loopback(url: str) -> bool:
    return urlparse(url).hostname in LOOPBACK


def _profile_region() -> str | None:
    """The region botocore finds in the profile (AWS_PROFILE, ~/.aws/config); None if there is none."""
    import botocore.session

    try:
        region = botocore.session.Session().get_config_variable("region")
    except Exception:  # a broken config file: the caller reports the missing region
        return None
    return str(region) if region else None


def load_settings() -> Settings:
    """Read the environment once, turning pydantic's report into one readable ConfigurationError."""
    try:
        return Settings()
    except ValidationError as error:
        problems = "; ".join(
            f"{_env_name(err['loc'])}: {err['msg'].removeprefix('Value error, ')}"
            if err["loc"]
            else err["msg"].removeprefix("Value error, ")  # a check across fields names its variable
            for err in error.errors()
        )
        raise ConfigurationError(f"invalid configuration: {problems}") from None


def _env_name(location: tuple[int | str, ...]) -> str:
    field = str(location[0]) if location else "?"
    return "AWS_REGION" if field == "region" else f"{ENV_PREFIX}{field.upper()}"
