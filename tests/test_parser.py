from __future__ import annotations

import pytest

from bot.errors import InvalidRequest
from commands.options import coerce
from commands.parser import clean_text, parse
from commands.registry import IMAGINE


def test_imagine_with_every_flag() -> None:
    command = parse('/imagine a red fox, "snow" --ar 16:9 --seed 7 --steps 30 --n 2 --neg "blurry, dark" --preset sdxl')
    assert command is not None and command.name == "imagine"
    assert command.options == {
        "prompt": 'a red fox, "snow"',
        "aspect": "16:9",
        "seed": "7",
        "steps": "30",
        "count": "2",
        "negative": "blurry, dark",
        "preset": "sdxl",
    }
    assert coerce(IMAGINE, command.options)["seed"] == 7


def test_aliases_and_bot_mentions() -> None:
    assert parse("/img@test_bot a cat", "test_bot").name == "imagine"  # type: ignore[union-attr]
    assert parse("/draw@Test_Bot a cat", "test_bot").name == "imagine"  # type: ignore[union-attr]
    assert parse("/imagine@other_bot a cat", "test_bot") is None
    assert parse("hello there") is None


def test_flag_equals_and_prompt_after_flags() -> None:
    command = parse("/imagine --ar=3:2 castle on a hill")
    assert command is not None and command.options == {"aspect": "3:2", "prompt": "castle on a hill"}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("/imagine cat --size 9", "Unknown option --size"),
        ("/imagine cat --seed", "needs a value"),
        ('/imagine cat --neg "open', "closing"),
        ("/imagine cat --seed 1 --seed 2", "twice"),
        ("/frobnicate", "Unknown command"),
        ("/queue extra words", "takes no text"),
    ],
)
def test_bad_syntax_says_what_is_allowed(text: str, message: str) -> None:
    with pytest.raises(InvalidRequest, match=message):
        parse(text)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"prompt": "x", "seed": "-1"}, "seed must be from 0 to 4294967295"),
        ({"prompt": "x", "seed": str(2**32)}, "seed must be from 0 to 4294967295"),
        ({"prompt": "x", "steps": "ten"}, "steps must be a whole number"),
        ({"prompt": "x", "aspect": "21:9"}, "aspect must be one of"),
        ({"prompt": "x", "strength": "nan"}, "strength must be a number"),
        ({}, "needs a value for prompt"),
    ],
)
def test_bad_values(options: dict[str, object], message: str) -> None:
    with pytest.raises(InvalidRequest, match=message):
        coerce(IMAGINE, options)


def test_control_and_bidi_characters_are_removed() -> None:
    assert clean_text("a\u202ecat\x00\x07 dog\n") == "acat dog"
