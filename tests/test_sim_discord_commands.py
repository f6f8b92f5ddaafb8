"""The Discord simulator refuses command registrations that Discord would refuse (platforms.md §1.4)."""

from __future__ import annotations

from typing import Any

import pytest

from simulators.discord_commands import InvalidCommand, check_commands, valid_name


def command(**changes: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "name": "imagine",
        "description": "Generate images",
        "type": 1,
        "options": [{"type": 3, "name": "prompt", "description": "What to draw", "required": True}],
    }
    base.update(changes)
    return base


def test_a_valid_command_passes() -> None:
    check_commands([command(name_localizations={"zh-CN": "画图"}, description_localizations={"zh-CN": "生成"})])


@pytest.mark.parametrize(
    ("name", "ok"),
    [("imagine", True), ("画图", True), ("dry-run_2", True), ("Imagine", False), ("two words", False),
     ("", False), ("x" * 33, False), ("a/b", False)],
)  # fmt: skip
def test_names_follow_discords_rule(name: str, ok: bool) -> None:
    assert valid_name(name) is ok


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"name": "Imagine"}, "0.name"),
        ({"description": ""}, "0.description"),
        ({"description": "x" * 101}, "0.description"),
        ({"name_localizations": {"zh": "画图"}}, "0.name_localizations.zh"),
        ({"name_localizations": {"zh-CN": "画 图"}}, "0.name_localizations.zh-CN"),
        ({"description_localizations": {"zh-CN": "x" * 101}}, "0.description_localizations.zh-CN"),
        ({"options": [{"type": 3, "name": f"o{i}", "description": "d"} for i in range(26)]}, "0.options"),
        (
            {
                "options": [
                    {"type": 3, "name": "a", "description": "d", "name_localizations": {"zh-CN": "同"}},
                    {"type": 3, "name": "b", "description": "d", "name_localizations": {"zh-CN": "同"}},
                ]
            },
            "0.options.1.name",
        ),
        (
            {
                "options": [
                    {"type": 3, "name": "a", "description": "d", "autocomplete": True,
                     "choices": [{"name": "x", "value": "x"}]}
                ]
            },
            "0.options.0.autocomplete",
        ),
        ({"description": "d" * 100, "options": [
            {"type": 3, "name": f"o{i}", "description": "d" * 100,
             "choices": [{"name": "c" * 100, "value": "v" * 100} for _ in range(25)]} for i in range(2)
        ]}, "0: Command exceeds maximum size"),
    ],
)  # fmt: skip
def test_what_discord_refuses_is_refused(changes: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidCommand, match=field.replace(".", r"\.")):
        check_commands([command(**changes)])


def test_duplicate_command_names_are_refused() -> None:
    with pytest.raises(InvalidCommand, match="unique"):
        check_commands([command(), command()])
