"""The README is the first thing a new user tries: keep it true."""

from __future__ import annotations

from pathlib import Path

import attrs

from studio9.config import Settings, env_name
from studio9.config.reference import render_into

README = Path(__file__).resolve().parents[2] / "README.md"


def test_configuration_table_is_current() -> None:
    text = README.read_text(encoding="utf-8")
    assert render_into(text) == text, "README settings table is stale: run `make docs`"


def test_every_setting_is_documented() -> None:
    text = README.read_text(encoding="utf-8")
    for field in attrs.fields(Settings):
        assert f"`{env_name(field.name)}`" in text


def test_readme_opens_with_the_two_commands() -> None:
    first_block = README.read_text(encoding="utf-8").split("```")[1]
    assert "make serve" in first_block
    assert "make test" in first_block
