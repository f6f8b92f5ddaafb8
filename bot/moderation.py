"""Blocked words and patterns in prompts: the bot-wide list from `[moderation]` plus each server's own.

Matching folds case and Unicode compatibility forms (full-width "ＢＡＤ" is "bad"). A term matches as whole
words, so blocking "ass" leaves "class" alone, and any run of spaces between its words matches; a term in a
script written without spaces (Chinese, Japanese, Thai) matches anywhere. Patterns are regular expressions,
checked against the folded prompt.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from functools import lru_cache

from pydantic import BaseModel, ConfigDict, Field, field_validator

# Scripts written without spaces between words: a term in them matches anywhere.
UNSPACED = re.compile(r"[\u0e00-\u0e7f\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")


def fold(text: str) -> str:
    return unicodedata.normalize("NFKC", text).casefold()


@lru_cache(maxsize=4096)
def _term_regex(term: str) -> re.Pattern[str]:
    folded = fold(term).strip()
    body = r"\s+".join(map(re.escape, folded.split()))
    if UNSPACED.search(folded):
        return re.compile(body)
    before = r"(?<!\w)" if re.match(r"\w", folded) else ""
    after = r"(?!\w)" if re.search(r"\w$", folded) else ""
    return re.compile(before + body + after)


class ModerationConfig(BaseModel):
    """Prompts that contain a blocked word or match a blocked pattern are refused before anything is charged."""

    model_config = ConfigDict(extra="forbid")

    blocked_words: list[str] = Field(default_factory=list)
    blocked_patterns: list[str] = Field(default_factory=list)
    check_negative: bool = False  # negative prompts usually *name* what to avoid: not checked by default

    @field_validator("blocked_words")
    @classmethod
    def _words(cls, words: list[str]) -> list[str]:
        cleaned = [word.strip() for word in words if word.strip()]
        return list(dict.fromkeys(cleaned))

    @field_validator("blocked_patterns")
    @classmethod
    def _patterns(cls, patterns: list[str]) -> list[str]:
        for pattern in patterns:
            try:
                re.compile(pattern)
            except re.error as exc:
                raise ValueError(f"{pattern!r} is not a valid regular expression ({exc})") from exc
        return patterns


def blocked_term(text: str, words: Iterable[str], patterns: Iterable[str] = ()) -> tuple[str, str] | None:
    """("word", term) or ("pattern", pattern) for the first blocked thing found in `text`, or None."""
    folded = fold(text)
    for word in words:
        if word.strip() and _term_regex(word).search(folded):
            return "word", word
    for pattern in patterns:
        if re.search(pattern, folded, flags=re.IGNORECASE):
            return "pattern", pattern
    return None
