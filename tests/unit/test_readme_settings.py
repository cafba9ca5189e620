"""The README's Configuration table is the settings' documentation: it must name exactly what is read."""

from __future__ import annotations

import re
from pathlib import Path

import msgspec
import pytest

from py_app.config import Settings

README = Path(__file__).resolve().parents[2] / "README.md"
READ_OUTSIDE_SETTINGS = {"ARCANA_ADMIN_PASSWORD"}  # create-admin reads it itself, so it never sits in Settings


def settings_variables() -> set[str]:
    """Every ``ARCANA_`` variable the code reads (the deploy tests check manifests against the same list)."""
    return {f"ARCANA_{field.name.upper()}" for field in msgspec.structs.fields(Settings)} | READ_OUTSIDE_SETTINGS


def documented() -> set[str]:
    text = README.read_text(encoding="utf-8")
    section = text.split("\n## Configuration\n", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("| `ARCANA_")]
    return {name for row in rows for name in re.findall(r"`(ARCANA_[A-Z0-9_]+)`", row.split(" | ")[0])}


@pytest.mark.req("SRS-177")
def test_every_setting_has_a_row_and_every_row_is_a_setting() -> None:
    read = settings_variables()
    rows = documented()
    assert sorted(read - rows) == [], "settings the README does not document"
    assert sorted(rows - read) == [], "README rows no code reads"
