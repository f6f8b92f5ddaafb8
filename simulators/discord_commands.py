"""Discord's checks on a bulk overwrite of application commands (platforms.md §1.4), as 400 / 50035 errors.

Names (and their localizations) are 1–32 characters of letters, digits, `-`, `_` or `'`, lowercase where a
letter has a lowercase form; descriptions 1–100; at most 25 options and 25 choices; no autocomplete together
with choices; at most 8000 characters of names, descriptions and values per command; localization keys must
be Discord locales; option names unique within a command in every locale.

USER (2) and MESSAGE (3) commands — the context menu — take mixed case and spaces in their names (1–32
characters), no description (an empty string at most) and no options; at most 15 of each type per scope, and
names are unique per type (a slash `edit` and a message command `Edit image` do not clash).
"""

from __future__ import annotations

import unicodedata
from typing import Any, TypeGuard

LOCALES = frozenset(
    {
        "id",
        "da",
        "de",
        "en-GB",
        "en-US",
        "es-ES",
        "es-419",
        "fr",
        "hr",
        "it",
        "lt",
        "hu",
        "nl",
        "no",
        "pl",
        "pt-BR",
        "ro",
        "fi",
        "sv-SE",
        "vi",
        "tr",
        "cs",
        "el",
        "bg",
        "ru",
        "uk",
        "hi",
        "th",
        "zh-CN",
        "ja",
        "zh-TW",
        "ko",
    }
)
MAX_COMMANDS = 100
MAX_MENU_COMMANDS = 15  # per type (USER, MESSAGE) and scope
MAX_OPTIONS = 25
MAX_CHOICES = 25
MAX_TOTAL = 8000


class InvalidCommand(ValueError):
    """A command Discord would refuse; the message names the field, as Discord's error body does."""


def valid_name(name: object) -> TypeGuard[str]:
    if not isinstance(name, str) or not 1 <= len(name) <= 32 or name != name.lower():
        return False
    return all(char in "-_'" or unicodedata.category(char)[0] in "LNM" for char in name)


def _check_localized(where: str, values: Any, check: Any) -> int:
    if values is None:
        return 0
    if not isinstance(values, dict):
        raise InvalidCommand(f"{where}: must be an object")
    total = 0
    for locale, text in values.items():
        if locale not in LOCALES:
            raise InvalidCommand(f"{where}.{locale}: Invalid locale")
        if not check(text):
            raise InvalidCommand(f"{where}.{locale}: invalid value {text!r}")
        total += len(text)
    return total


def _description(text: object) -> bool:
    return isinstance(text, str) and 1 <= len(text) <= 100


def _check_option(where: str, option: dict[str, Any], seen: dict[str, set[str]]) -> int:
    name = option.get("name")
    if not valid_name(name):
        raise InvalidCommand(f"{where}.name: Command name is invalid ({name!r})")
    if not _description(option.get("description")):
        raise InvalidCommand(f"{where}.description: Must be between 1 and 100 in length.")
    total = len(name) + len(option["description"])
    total += _check_localized(f"{where}.name_localizations", option.get("name_localizations"), valid_name)
    total += _check_localized(
        f"{where}.description_localizations", option.get("description_localizations"), _description
    )
    for locale, localized in {"": name, **(option.get("name_localizations") or {})}.items():
        if localized in seen.setdefault(locale, set()):
            raise InvalidCommand(f"{where}.name: Application command option names must be unique ({localized!r})")
        seen[locale].add(localized)
    choices = option.get("choices") or []
    if len(choices) > MAX_CHOICES:
        raise InvalidCommand(f"{where}.choices: Must be {MAX_CHOICES} or fewer in length.")
    if choices and option.get("autocomplete"):
        raise InvalidCommand(f"{where}.autocomplete: Autocomplete cannot be set with choices")
    for index, choice in enumerate(choices):
        if not isinstance(choice.get("name"), str) or not 1 <= len(choice["name"]) <= 100:
            raise InvalidCommand(f"{where}.choices.{index}.name: Must be between 1 and 100 in length.")
        total += len(choice["name"]) + len(str(choice.get("value", "")))
    return total


def menu_name(name: object) -> TypeGuard[str]:
    """A USER or MESSAGE command's name: 1-32 characters, any case, spaces allowed."""
    return isinstance(name, str) and 1 <= len(name) <= 32 and name == name.strip() and name.isprintable()


def _check_menu(where: str, command: dict[str, Any]) -> None:
    if not menu_name(command.get("name")):
        raise InvalidCommand(f"{where}.name: Command name is invalid ({command.get('name')!r})")
    if command.get("description"):
        raise InvalidCommand(f"{where}.description: Context menu commands cannot have description")
    if command.get("options"):
        raise InvalidCommand(f"{where}.options: Context menu commands cannot have options")
    _check_localized(f"{where}.name_localizations", command.get("name_localizations"), menu_name)


def check_command(where: str, command: dict[str, Any]) -> None:
    if command.get("type", 1) in (2, 3):
        _check_menu(where, command)
        return
    name = command.get("name")
    if not valid_name(name):
        raise InvalidCommand(f"{where}.name: Command name is invalid ({name!r})")
    if command.get("type", 1) == 1 and not _description(command.get("description")):
        raise InvalidCommand(f"{where}.description: Must be between 1 and 100 in length.")
    total = len(name) + len(command.get("description") or "")
    total += _check_localized(f"{where}.name_localizations", command.get("name_localizations"), valid_name)
    total += _check_localized(
        f"{where}.description_localizations", command.get("description_localizations"), _description
    )
    options = command.get("options") or []
    if len(options) > MAX_OPTIONS:
        raise InvalidCommand(f"{where}.options: Must be {MAX_OPTIONS} or fewer in length.")
    seen: dict[str, set[str]] = {}
    for index, option in enumerate(options):
        total += _check_option(f"{where}.options.{index}", option, seen)
    if total > MAX_TOTAL:
        raise InvalidCommand(f"{where}: Command exceeds maximum size ({MAX_TOTAL})")


def check_commands(items: Any) -> None:
    """Raise InvalidCommand for the first thing Discord would refuse in a bulk overwrite."""
    if not isinstance(items, list):
        raise InvalidCommand("body: must be an array of commands")
    if sum(1 for command in items if isinstance(command, dict) and command.get("type", 1) == 1) > MAX_COMMANDS:
        raise InvalidCommand(f"body: Must be {MAX_COMMANDS} or fewer in length.")
    names: set[tuple[int, str]] = set()
    for index, command in enumerate(items):
        check_command(str(index), command)
        key = (int(command.get("type", 1)), command["name"])
        if key in names:
            raise InvalidCommand(f"{index}.name: Application command names must be unique")
        names.add(key)
    for kind in (2, 3):
        if sum(1 for type_, _ in names if type_ == kind) > MAX_MENU_COMMANDS:
            raise InvalidCommand(f"body: Maximum number of context menu commands reached ({MAX_MENU_COMMANDS})")
