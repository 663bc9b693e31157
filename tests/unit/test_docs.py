"""The docs hold: the configuration table is the settings model's, every variable the code reads is
in it, and no document points at a file outside the repository or at one that does not exist."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from projector.config import reference

pytestmark = pytest.mark.unit

REPO = Path(__file__).resolve().parents[2]
DOCS = [REPO / "README.md", REPO / "infra" / "README.md", *sorted((REPO / "docs").glob("*.md"))]


def test_the_readme_configuration_table_is_generated_from_the_settings_model() -> None:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    assert reference.section() in readme, "run: python -m projector.config.reference --write"


def test_every_variable_the_code_reads_is_in_the_table() -> None:
    table = reference.table()
    read = set()
    for path in (REPO / "projector").rglob("*.py"):
        read |= set(
            re.findall(
                r"""(?:environ(?:\.get)?[\[(]|getenv\()["']((?:PROJECTOR|POWERTOOLS)_[A-Z_]+)""",
                path.read_text(),
            )
        )
    assert read, "the scan found nothing: the pattern is wrong"
    assert {name for name in read if f"`{name}`" not in table} == set()


def test_every_settings_field_is_a_row_with_a_description() -> None:
    from projector.config.settings import Settings

    table = reference.table()
    for field, info in Settings.model_fields.items():
        assert info.description, field
        assert info.description in table, field


@pytest.mark.parametrize("document", DOCS, ids=lambda path: str(path.relative_to(REPO)))
def test_no_reference_outside_the_repository(document: Path) -> None:
    text = document.read_text(encoding="utf-8")
    for outside in ("CONTRACTS.md", "SERVICES.md", "../shared", "/work/"):
        assert outside not in text, f"{document.name} mentions {outside}"
    for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", text):
        if re.match(r"^[a-z]+://", target):
            continue
        resolved = (document.parent / target).resolve()
        assert resolved.is_relative_to(REPO), f"{document.name} links outside the repository: {target}"
        assert resolved.exists(), f"{document.name} links to a missing file: {target}"
