"""The text syntax every adapter shares: `/imagine a red fox --ar 16:9 --seed 7 --neg "blurry"`."""

from __future__ import annotations

import re

from bot.errors import InvalidRequest
from commands.registry import BY_NAME, CommandInput, CommandSpec, OptionSpec

COMMAND = re.compile(r"^/([A-Za-z0-9_]{1,32})(?:@([A-Za-z0-9_]{1,64}))?(?=\s|$)")
FLAG = re.compile(r"(?:(?<=\s)|^)(?:--|—)([A-Za-z][A-Za-z_-]*)(?=\s|=|$)")
CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f\u202a-\u202e\u2066-\u2069\u200e\u200f]")


def clean_text(value: str) -> str:
    """Drop control and bidi-override characters; keep newlines and ordinary text."""
    return CONTROL.sub("", value).strip()


def is_command(text: str) -> bool:
    return bool(COMMAND.match(text.strip()))


def parse(text: str, bot_username: str | None = None) -> CommandInput | None:
    """Parse a chat message. Returns None when it is not for us (not a command, or for another bot)."""
    text = text.strip()
    match = COMMAND.match(text)
    if not match:
        return None
    name, addressed = match.group(1).lower(), match.group(2)
    if addressed and bot_username and addressed.lower() != bot_username.lower():
        return None
    spec = BY_NAME.get(name)
    if spec is None:
        known = ", ".join(f"/{command}" for command in sorted({s.name for s in BY_NAME.values()}))
        raise InvalidRequest.of("error.unknown_command_list", name=name, known=known)
    labels: dict[str, str] = {}
    options = split_options(spec, text[match.end() :], labels)
    return CommandInput(name=spec.name, options=options, labels=labels)


def _read_value(rest: str) -> tuple[str, str]:
    """Read one option value (quoted or a single word); return it and what follows."""
    rest = rest.lstrip()
    if rest.startswith("="):
        rest = rest[1:].lstrip()
    if rest[:1] in ('"', "“", "'"):
        closing = {'"': '"', "“": "”", "'": "'"}[rest[0]]
        end = rest.find(closing, 1)
        if end < 0:
            raise InvalidRequest.of("error.unclosed_quote", closing=closing)
        return rest[1:end], rest[end + 1 :]
    parts = rest.split(maxsplit=1)
    if not parts:
        return "", ""
    return parts[0], parts[1] if len(parts) > 1 else ""


def _flag_value(rest: str) -> tuple[str, str]:
    """A boolean flag's value: only when written `--flag=value`; the word after a bare flag is not its value."""
    if rest.lstrip().startswith("="):
        return _read_value(rest)
    return "true", rest


def _words(text: str) -> list[str]:
    """Words of free text, where a quoted phrase counts as one word."""
    words = []
    rest = text
    while rest.strip():
        word, rest = _read_value(rest)
        words.append(word)
    return words


def split_options(spec: CommandSpec, body: str, labels: dict[str, str] | None = None) -> dict[str, object]:
    """Split free text and `--flag value` pairs; free text goes to the positional option.

    `labels`, when given, gets each option's flag as typed (`{"count": "--n"}`) for error messages.
    """
    options: dict[str, object] = {}
    labels = {} if labels is None else labels
    free: list[str] = []
    rest = body
    while rest:
        match = FLAG.search(rest)
        if not match:
            free.append(rest)
            break
        free.append(rest[: match.start()])
        option = spec.option(match.group(1).lower().replace("-", "_"))
        if option is None or option.positional or option.type == "attachment":
            allowed = " ".join(f"--{o.flags[0] if o.flags else o.name}" for o in spec.options if _flaggable(o))
            raise InvalidRequest.of(
                "error.unknown_option", flag=match.group(1), command=spec.name, allowed=allowed or "—"
            )
        if option.type == "boolean":  # a bare flag is true; `--private=no` says false
            value, rest = _flag_value(rest[match.end() :])
        else:
            value, rest = _read_value(rest[match.end() :])
        if value == "":
            raise InvalidRequest.of("error.option_needs_value", flag=match.group(1), usage=spec.usage)
        if option.name in options and option.repeatable:
            value = f"{options[option.name]}, {value}"
        elif option.name in options:
            raise InvalidRequest.of("error.option_twice", flag=match.group(1))
        options[option.name] = value
        labels[option.name] = "--" + match.group(1)
    prose = spec.name in ("imagine", "edit")  # a prompt or an instruction keeps its line breaks
    text = " ".join(free).strip() if prose else " ".join(" ".join(free).split())
    positional = spec.positional
    if text:
        if positional is None:
            raise InvalidRequest.of("error.takes_no_text", command=spec.name, usage=spec.usage)
        if positional.type == "choice" or spec.name == "admin":
            words = _words(text)
            options[positional.name] = words[0]
            extra = [o for o in spec.options if not o.positional]
            given = set(options)
            for option, word in zip(extra, words[1:], strict=False):
                options.setdefault(option.name, word)
            if spec.name == "settings" and "value" not in given and len(words) > 1:  # a negative is several words
                options["value"] = " ".join(words[1:])
        else:
            options[positional.name] = text
    return options


def _flaggable(option: OptionSpec) -> bool:
    return not option.positional and option.type != "attachment"
