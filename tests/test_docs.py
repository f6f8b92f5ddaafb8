"""The project's own documents: the configuration reference covers every setting; README, LICENSE, ignores."""

from __future__ import annotations

import re
import types
import typing
from pathlib import Path

from pydantic import BaseModel

from bot.configref import render
from bot.secret_source import SecretSource
from bot.settings import Settings

ROOT = Path(__file__).resolve().parent.parent


def setting_keys(model: type[BaseModel] = Settings, prefix: str = "") -> set[str]:
    """Every key a config file may set, as `section.key` (`backends.<name>.url`), walked from the models."""
    keys: set[str] = set()
    for name, field in model.model_fields.items():
        annotation, args = field.annotation, typing.get_args(field.annotation)
        optional = [arg for arg in args if isinstance(arg, type) and issubclass(arg, BaseModel)]
        if typing.get_origin(annotation) in (typing.Union, types.UnionType) and len(optional) == 1:
            annotation = optional[0]  # an optional section, e.g. [presets.<name>.hires]
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            keys |= setting_keys(annotation, f"{prefix}{name}.")
        elif (
            typing.get_origin(annotation) is dict
            and args
            and isinstance(args[-1], type)
            and issubclass(args[-1], BaseModel)
        ):
            keys |= setting_keys(args[-1], f"{prefix}{name}.<name>.")
        else:
            keys.add(prefix + name)
    return keys


def documented_keys(text: str) -> set[str]:
    keys: set[str] = set()
    section = ""
    for line in text.splitlines():
        if heading := re.match(r"^## (?:`\[(.+)\]`|Top level)$", line):
            section = f"{heading.group(1)}." if heading.group(1) else ""
        elif row := re.match(r"^\| `([a-z0-9_]+)` \|", line):
            keys.add(section + row.group(1))
    return keys


def test_every_setting_is_in_the_configuration_reference() -> None:
    text = (ROOT / "docs" / "configuration.md").read_text(encoding="utf-8")
    assert setting_keys() == documented_keys(text)
    assert text == render(), "docs/configuration.md is stale: python -m bot.configref > docs/configuration.md"
    undescribed = [line for line in text.splitlines() if line.startswith("| `") and line.endswith("|  |")]
    assert undescribed == []


def test_readme_stands_on_its_own() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "shared" not in readme and "DESIGN.md" not in readme
    assert "Python 3.11 or newer" in readme
    for linked in ("docs/architecture.md", "docs/configuration.md", "LICENSE"):
        assert f"]({linked})" in readme and (ROOT / linked).is_file()
    architecture = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
    assert "shared" not in architecture and "## The way a request travels" in architecture


def test_license_matches_pyproject() -> None:
    text = (ROOT / "LICENSE").read_text(encoding="utf-8")
    assert text.startswith("MIT License") and "Copyright (c) 2026 imagebridge contributors" in text
    assert 'license = "MIT"' in (ROOT / "pyproject.toml").read_text(encoding="utf-8")


def test_local_config_is_git_ignored() -> None:
    ignored = set((ROOT / ".gitignore").read_text(encoding="utf-8").splitlines())
    assert {"imagebridge.toml", "config/", ".env"} <= ignored


def test_an_empty_secret_from_env_example_counts_as_unset() -> None:
    assert SecretSource({"DISCORD_TOKEN": ""}).get("DISCORD_TOKEN") is None
