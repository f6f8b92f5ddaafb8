"""Prompt wildcards: `{red|blue} car` is one job per choice, `__name__` draws from an admin's list.

`\\{`, `\\|`, `\\}` and `\\\\` are literal; LoRA tags `<lora:x:0.8>` and weights `(word:1.2)` hold none of
the special characters, so they pass through untouched. The number of prompts is counted before any is
built, so `{a|b}` written forty times is refused, not expanded.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, model_validator

from bot.errors import InvalidRequest

SPECIAL = "{|}\\"
SPACES = re.compile(r"[ \t]{2,}")


class WildcardsConfig(BaseModel):
    """`[wildcards]`: named lists (`color = ["red", "blue"]`), a folder of `name.txt` files, the job bound."""

    model_config = ConfigDict(extra="allow", frozen=True)

    folder: str | None = Field(default=None, description="folder of NAME.txt files, one choice per line")
    max_jobs: int = Field(default=8, ge=1, le=100, description="the most jobs one prompt may expand into")
    _cache: dict[str, list[str]] | None = PrivateAttr(default=None)

    @model_validator(mode="after")
    def _lists(self) -> WildcardsConfig:
        for name, value in (self.model_extra or {}).items():
            if not isinstance(value, list) or not value or not all(isinstance(item, str) for item in value):
                raise ValueError(f"wildcards.{name} must be a non-empty list of strings")
        if self.folder and not Path(self.folder).is_dir():
            raise ValueError(f"wildcards.folder: {self.folder!r} is not a folder (it holds NAME.txt files)")
        return self

    def lists(self) -> dict[str, list[str]]:
        """Every list by name: the folder's files first, the config's lists over them (read once, like the config)."""
        if self._cache is None:
            self._cache = self._read()
        return self._cache

    def _read(self) -> dict[str, list[str]]:
        found: dict[str, list[str]] = {}
        if self.folder:
            for path in sorted(Path(self.folder).glob("*.txt")):
                lines = [line.strip() for line in path.read_text(encoding="utf-8").splitlines()]
                items = [line for line in lines if line and not line.startswith("#")]
                if items:
                    found[path.stem.lower()] = items
        for name, value in (self.model_extra or {}).items():
            found[name.lower()] = list(value)
        return found


@dataclass(frozen=True)
class Wild:
    """`__name__`: one item drawn from a list."""

    name: str


Node = str | Wild | list[list["Node"]]  # text, a draw, or a group of alternatives (each a sequence)
Seq = list[Node]


@dataclass(frozen=True)
class Variant:
    """One prompt of an expansion and what was chosen for it (shown in Info)."""

    prompt: str
    picks: tuple[str, ...]


def parse(text: str) -> Seq:
    """The prompt as a tree; an unbalanced brace is refused with a hint to escape it."""
    stack: list[tuple[list[Seq], Seq]] = []
    seq: Seq = []
    i = 0
    while i < len(text):
        char = text[i]
        if char == "\\" and i + 1 < len(text) and text[i + 1] in SPECIAL:
            _text(seq, text[i + 1])
            i += 2
            continue
        if char == "{":
            group: list[Seq] = []
            stack.append((group, seq))
            seq = []
            group.append(seq)
        elif char == "|" and stack:
            seq = []
            stack[-1][0].append(seq)
        elif char == "}":
            if not stack:
                raise InvalidRequest.of("error.wildcard_brace", char="}")
            group, seq = stack.pop()
            seq.append(group)
        elif char == "_" and text.startswith("__", i) and (end := text.find("__", i + 2)) > i + 2:
            name = text[i + 2 : end]
            if name.replace("-", "").replace("_", "").isalnum():
                seq.append(Wild(name.lower()))
                i = end + 2
                continue
            _text(seq, char)
        else:
            _text(seq, char)
        i += 1
    if stack:
        raise InvalidRequest.of("error.wildcard_brace", char="{")
    return seq


def _text(seq: Seq, char: str) -> None:
    if seq and isinstance(seq[-1], str):
        seq[-1] += char
    else:
        seq.append(char)


def count(seq: Seq) -> int:
    """How many prompts the tree makes (a draw makes one)."""
    total = 1
    for node in seq:
        if isinstance(node, list):
            total *= sum(count(alternative) for alternative in node)
    return total


def _expand(seq: Seq) -> list[tuple[list[str | Wild], tuple[str, ...]]]:
    results: list[tuple[list[str | Wild], tuple[str, ...]]] = [([], ())]
    for node in seq:
        if isinstance(node, list):
            options = [
                (parts, (_flat(parts).strip() or "∅", *picks) if len(node) > 1 else picks)
                for alternative in node
                for parts, picks in _expand(alternative)
            ]
            results = [(done + parts, picks + more) for done, picks in results for parts, more in options]
        else:
            results = [([*done, node], picks) for done, picks in results]
    return results


def _flat(parts: list[str | Wild]) -> str:
    return "".join(part if isinstance(part, str) else f"__{part.name}__" for part in parts)


def expand(text: str, lists: dict[str, list[str]], max_jobs: int, rng: random.Random) -> list[Variant]:
    """Every prompt the text makes, refused whole when over `max_jobs` or naming an unknown list."""
    tree = parse(text)
    total = count(tree)
    if total > max_jobs:
        raise InvalidRequest.of("error.wildcard_too_many", count=total, limit=max_jobs)
    variants = []
    for parts, picks in _expand(tree):
        words = []
        drawn = list(picks)
        for part in parts:
            if isinstance(part, Wild):
                if part.name not in lists:
                    known = ", ".join(f"__{name}__" for name in sorted(lists)) or "—"
                    raise InvalidRequest.of("error.wildcard_unknown", name=part.name, known=known)
                item = rng.choice(lists[part.name])
                drawn.append(f"__{part.name}__={item}")
                words.append(item)
            else:
                words.append(part)
        variants.append(Variant(SPACES.sub(" ", "".join(words)).strip(), tuple(drawn)))
    return variants
