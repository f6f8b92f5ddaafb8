"""Message catalogs: English and Simplified Chinese. `t(lang, key, **params)` renders one message.

A message with plural forms is a TOML table of CLDR plural categories, e.g.
`images = { one = "{count} image", other = "{count} images" }`; `t(..., count=n)` picks the form
by the language's CLDR rule (English: one/other; Chinese: other only).
"""

from __future__ import annotations

import logging
import tomllib
from functools import cache
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

LANGUAGES = ("en", "zh")
DEFAULT = "en"
LOCALES = Path(__file__).parent / "locales"


def language(code: str | None) -> str:
    """A platform's language code ("zh-hans", "zh_CN", "en-US"...) as one of LANGUAGES; English otherwise."""
    if not code:
        return DEFAULT
    base = str(code).strip().lower().replace("_", "-").split("-")[0]
    return base if base in LANGUAGES else DEFAULT


CATEGORIES = frozenset({"zero", "one", "two", "few", "many", "other"})


def plural_category(lang: str, count: object) -> str:
    """The CLDR plural category of `count` in `lang` (the integer rules of en and zh)."""
    # en: "one" is i = 1 and v = 0 (the integer 1, not 1.0); zh has no plural forms.
    if lang == "en" and isinstance(count, int) and not isinstance(count, bool) and count == 1:
        return "one"
    return "other"


def _is_plural(value: object) -> bool:
    return isinstance(value, dict) and "other" in value and set(value) <= CATEGORIES


def _flatten(table: dict[str, Any], prefix: str = "") -> dict[str, str | dict[str, str]]:
    flat: dict[str, str | dict[str, str]] = {}
    for name, value in table.items():
        key = f"{prefix}{name}"
        if _is_plural(value):
            flat[key] = {category: str(form) for category, form in value.items()}
        elif isinstance(value, dict):
            flat.update(_flatten(value, key + "."))
        else:
            flat[key] = str(value)
    return flat


@cache
def _messages(lang: str) -> dict[str, str | dict[str, str]]:
    with (LOCALES / f"{lang}.toml").open("rb") as file:
        return _flatten(tomllib.load(file))


@cache
def catalog(lang: str) -> dict[str, str]:
    """All messages of one language, keyed by dotted name (a plural message by its `other` form)."""
    return {key: value if isinstance(value, str) else value["other"] for key, value in _messages(lang).items()}


@cache
def plurals(lang: str) -> dict[str, dict[str, str]]:
    """The messages of one language that have plural forms, by category."""
    return {key: value for key, value in _messages(lang).items() if isinstance(value, dict)}


def t(lang: str | None, key: str, **params: object) -> str:
    """The message `key` in `lang` (English when the language lacks it), formatted with `params`.

    A plural message picks its form from the `count` parameter.
    """
    chosen = lang if lang in LANGUAGES else DEFAULT
    message = _messages(chosen).get(key)
    if message is None:
        if chosen != DEFAULT:
            log.warning("message %r missing in the %s catalog", key, chosen)
        chosen = DEFAULT
        message = _messages(DEFAULT)[key]
    if isinstance(message, dict):
        message = message.get(plural_category(chosen, params.get("count")), message["other"])
    return message.format(**params)
