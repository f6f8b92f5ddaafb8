"""Message catalogs: English and Simplified Chinese. `t(lang, key, **params)` renders one message."""

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


def _flatten(table: dict[str, Any], prefix: str = "") -> dict[str, str]:
    flat: dict[str, str] = {}
    for name, value in table.items():
        key = f"{prefix}{name}"
        if isinstance(value, dict):
            flat.update(_flatten(value, key + "."))
        else:
            flat[key] = str(value)
    return flat


@cache
def catalog(lang: str) -> dict[str, str]:
    """All messages of one language, keyed by dotted name."""
    with (LOCALES / f"{lang}.toml").open("rb") as file:
        return _flatten(tomllib.load(file))


def t(lang: str | None, key: str, **params: object) -> str:
    """The message `key` in `lang` (English when the language lacks it), formatted with `params`."""
    chosen = lang if lang in LANGUAGES else DEFAULT
    template = catalog(chosen).get(key)
    if template is None:
        if chosen != DEFAULT:
            log.warning("message %r missing in the %s catalog", key, chosen)
        template = catalog(DEFAULT)[key]
    return template.format(**params)
