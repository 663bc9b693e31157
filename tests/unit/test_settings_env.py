"""Settings read the environment themselves, as pydantic-settings did, without importing it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from projector.config import Settings, load_settings

pytestmark = pytest.mark.unit


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in list(os.environ):
        if name.upper().startswith("PROJECTOR_") or name in (
            "AWS_REGION",
            "AWS_DEFAULT_REGION",
            "AWS_PROFILE",
        ):
            monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))


def test_arguments_win_over_variables_and_count_as_set(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PROJECTOR_SOURCE_TABLE", "from-env")
    monkeypatch.setenv("PROJECTOR_INDEX_PREFIX", "env-")
    settings = Settings(source_table="from-args")
    assert (settings.source_table, settings.index_prefix) == ("from-args", "env-")
    assert {"source_table", "index_prefix"} <= settings.model_fields_set
    assert "opensearch_url" not in settings.model_fields_set  # the sigv4 and one-side-local checks read it


def test_variable_names_are_case_insensitive(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("projector_source_table", "lower.case")
    monkeypatch.setenv("aws_default_region", "eu-north-1")
    settings = load_settings()
    assert (settings.source_table, settings.region) == ("lower.case", "eu-north-1")


def test_defaults_are_validated_and_unknown_variables_ignored(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PROJECTOR_NOT_A_SETTING", "1")
    settings = load_settings()
    assert settings.dynamodb_endpoint == "http://127.0.0.1:5000"
    assert not hasattr(settings, "not_a_setting")


def test_the_handler_does_not_import_pydantic_settings() -> None:
    code = "import sys, projector.handler; print('pydantic_settings' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "False"
