"""Settings come from PROJECTOR_* variables; a bad value is one readable line naming the variable."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from projector.config import ConfigurationError, Settings, load_settings

pytestmark = pytest.mark.unit


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in list(os.environ):
        if name.startswith("PROJECTOR_") or name in ("AWS_REGION", "AWS_DEFAULT_REGION", "AWS_PROFILE"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.chdir(tmp_path)


def failure(monkeypatch: pytest.MonkeyPatch, **variables: str) -> str:
    for name, value in variables.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ConfigurationError) as caught:
        load_settings()
    message = str(caught.value)
    assert "\n" not in message, f"not one line: {message!r}"
    assert message.startswith("invalid configuration: ")
    return message


def test_defaults_point_at_the_local_servers() -> None:
    settings = load_settings()
    assert settings.opensearch_url == "http://127.0.0.1:9200"
    assert settings.dynamodb_endpoint == "http://127.0.0.1:5000"
    assert settings.source_table == "orders"
    assert settings.dead_letters == "file://.projector/dead-letters"
    assert settings.region == "us-east-1"


def test_values_are_read_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PROJECTOR_OPENSEARCH_URL", "https://search-shop.eu-west-1.es.amazonaws.com/")
    monkeypatch.setenv("PROJECTOR_OPENSEARCH_AUTH", "sigv4")
    monkeypatch.setenv("PROJECTOR_DYNAMODB_ENDPOINT", "")
    monkeypatch.setenv("PROJECTOR_SOURCE_TABLE", "shop.orders-v2")
    monkeypatch.setenv("PROJECTOR_DEAD_LETTERS", "s3://shop-dead-letters/projector")
    monkeypatch.setenv("PROJECTOR_INDEX_PREFIX", "prod-")
    monkeypatch.setenv("AWS_REGION", "eu-west-1")
    settings = load_settings()
    assert settings.opensearch_url == "https://search-shop.eu-west-1.es.amazonaws.com"
    assert settings.opensearch_auth == "sigv4"
    assert settings.dynamodb_endpoint is None
    assert settings.source_table == "shop.orders-v2"
    assert settings.dead_letters == "s3://shop-dead-letters/projector"
    assert settings.index_prefix == "prod-"
    assert settings.region == "eu-west-1"


@pytest.mark.parametrize(
    "url", ["localhost:9200", "ftp://search.example.com", "http://", "search.example.com"]
)
def test_a_bad_opensearch_url_names_the_variable(monkeypatch: pytest.MonkeyPatch, url: str) -> None:
    message = failure(monkeypatch, PROJECTOR_OPENSEARCH_URL=url)
    assert "PROJECTOR_OPENSEARCH_URL: must be an http(s) URL" in message
    assert repr(url) in message


def test_a_bad_dynamodb_endpoint_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    message = failure(monkeypatch, PROJECTOR_DYNAMODB_ENDPOINT="127.0.0.1:5000")
    assert "PROJECTOR_DYNAMODB_ENDPOINT: must be an http(s) URL or unset" in message


@pytest.mark.parametrize("table", ["ab", "orders table", "orders/2024", "o" * 256, "örders"])
def test_a_bad_source_table_names_the_variable(monkeypatch: pytest.MonkeyPatch, table: str) -> None:
    message = failure(monkeypatch, PROJECTOR_SOURCE_TABLE=table)
    assert "PROJECTOR_SOURCE_TABLE: not a valid DynamoDB table name" in message


def test_a_bad_aggregates_table_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    message = failure(monkeypatch, PROJECTOR_AGGREGATES_TABLE="x")
    assert "PROJECTOR_AGGREGATES_TABLE: not a valid DynamoDB table name: 'x'" in message


@pytest.mark.parametrize(
    "url", ["https://bucket.s3.amazonaws.com/x", "s3://", "s3:///prefix", "/var/dead-letters", "dead-letters"]
)
def test_a_bad_dead_letter_url_names_the_variable(monkeypatch: pytest.MonkeyPatch, url: str) -> None:
    message = failure(monkeypatch, PROJECTOR_DEAD_LETTERS=url)
    assert "PROJECTOR_DEAD_LETTERS: must be s3://bucket/prefix or file:///path" in message
    assert repr(url) in message


@pytest.mark.parametrize(
    "url", ["s3://bucket", "s3://bucket/prefix/", "file:///var/dead-letters", "file://relative"]
)
def test_good_dead_letter_urls(monkeypatch: pytest.MonkeyPatch, url: str) -> None:
    monkeypatch.setenv("PROJECTOR_DEAD_LETTERS", url)
    assert load_settings().dead_letters == url


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("PROJECTOR_OPENSEARCH_AUTH", "basic"),
        ("PROJECTOR_OPENSEARCH_SERVICE", "solr"),
        ("PROJECTOR_OPENSEARCH_TIMEOUT_S", "0"),
        ("PROJECTOR_OPENSEARCH_TIMEOUT_S", "soon"),
        ("PROJECTOR_DEADLINE_MARGIN_MS", "-1"),
        ("PROJECTOR_INDEX_PREFIX", "Prod-"),
        ("PROJECTOR_INDEX_PREFIX", "-prod"),
    ],
)
def test_other_bad_values_name_their_variable(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str
) -> None:
    message = failure(monkeypatch, **{variable: value})
    assert f"{variable}: " in message


def test_several_problems_are_reported_on_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    message = failure(
        monkeypatch,
        PROJECTOR_OPENSEARCH_URL="nope",
        PROJECTOR_SOURCE_TABLE="x",
        PROJECTOR_DEAD_LETTERS="ftp://host/x",
    )
    for variable in ("PROJECTOR_OPENSEARCH_URL", "PROJECTOR_SOURCE_TABLE", "PROJECTOR_DEAD_LETTERS"):
        assert f"{variable}: " in message
    assert message.count("; ") == 2


def test_error_does_not_chain_pydantic_noise(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PROJECTOR_SOURCE_TABLE", "x")
    with pytest.raises(ConfigurationError) as caught:
        load_settings()
    assert caught.value.__cause__ is None and caught.value.__suppress_context__


def test_settings_are_frozen() -> None:
    settings = Settings()
    with pytest.raises(Exception, match="frozen"):
        settings.source_table = "other"  # type: ignore[misc]


# --- the AWS chain, and no local default outside this machine ------------------------------------------


def test_sigv4_over_plain_http_to_a_remote_host_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    message = failure(
        monkeypatch,
        PROJECTOR_OPENSEARCH_URL="http://search-shop.eu-west-1.es.amazonaws.com",
        PROJECTOR_OPENSEARCH_AUTH="sigv4",
        AWS_REGION="eu-west-1",
    )
    assert "PROJECTOR_OPENSEARCH_URL" in message and "https://" in message


def test_sigv4_over_http_on_this_machine_is_allowed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PROJECTOR_OPENSEARCH_URL", "http://127.0.0.1:9200")
    monkeypatch.setenv("PROJECTOR_OPENSEARCH_AUTH", "sigv4")
    assert load_settings().opensearch_auth == "sigv4"


def test_sigv4_without_a_url_is_an_error_not_localhost(monkeypatch: pytest.MonkeyPatch) -> None:
    message = failure(monkeypatch, PROJECTOR_OPENSEARCH_AUTH="sigv4", AWS_REGION="eu-west-1")
    assert "PROJECTOR_OPENSEARCH_URL" in message


def test_the_region_follows_aws_default_region(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_DEFAULT_REGION", "ap-southeast-2")
    assert load_settings().region == "ap-southeast-2"
    monkeypatch.setenv("AWS_REGION", "eu-central-1")  # AWS_REGION wins, as in the SDKs
    assert load_settings().region == "eu-central-1"


def test_the_region_follows_the_profile(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    config = tmp_path / "aws-config"
    config.write_text("[profile shop]\nregion = sa-east-1\n")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(config))
    monkeypatch.setenv("AWS_PROFILE", "shop")
    monkeypatch.setenv("PROJECTOR_OPENSEARCH_URL", "https://search-shop.sa-east-1.es.amazonaws.com")
    monkeypatch.setenv("PROJECTOR_DYNAMODB_ENDPOINT", "")
    assert load_settings().region == "sa-east-1"


def test_a_missing_region_is_an_error_outside_this_machine(monkeypatch: pytest.MonkeyPatch) -> None:
    message = failure(
        monkeypatch,
        PROJECTOR_OPENSEARCH_URL="https://search-shop.eu-west-1.es.amazonaws.com",
        PROJECTOR_DYNAMODB_ENDPOINT="",
    )
    assert "AWS_REGION" in message
    assert "AWS_REGION" in failure(monkeypatch, PROJECTOR_OPENSEARCH_URL="http://127.0.0.1:9200")


def test_one_side_in_aws_and_the_other_left_local_is_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    """A forgotten variable must not silently send half of the work to the local servers."""
    message = failure(
        monkeypatch,
        PROJECTOR_OPENSEARCH_URL="https://search-shop.eu-west-1.es.amazonaws.com",
        PROJECTOR_OPENSEARCH_AUTH="sigv4",
        AWS_REGION="eu-west-1",
    )
    assert "PROJECTOR_DYNAMODB_ENDPOINT" in message
    monkeypatch.delenv("PROJECTOR_OPENSEARCH_URL")
    monkeypatch.delenv("PROJECTOR_OPENSEARCH_AUTH")
    assert "PROJECTOR_OPENSEARCH_URL" in failure(monkeypatch, PROJECTOR_DYNAMODB_ENDPOINT="")
    monkeypatch.setenv("PROJECTOR_OPENSEARCH_URL", "http://127.0.0.1:9200")  # said on purpose: allowed
    assert load_settings().dynamodb_endpoint is None
