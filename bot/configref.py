"""The configuration reference (docs/configuration.md), generated from the settings models.

Every key comes from the pydantic models, so none can be left out; its type and default come from the
model, its meaning from the field's description or the comment next to it in the shipped example config.
`python -m bot.configref > docs/configuration.md` rewrites the file; a test checks it is up to date.
"""

from __future__ import annotations

import re
import types
import typing
from importlib import resources
from pathlib import Path
from typing import Any

from pydantic import BaseModel, SecretStr
from pydantic_core import PydanticUndefined

from bot.settings import Settings

KEY_LINE = re.compile(r"^#?\s*([a-z0-9_]+)\s*=\s*(.*?)(?:\s{2,}#\s*(.*))?$")
SECTION = re.compile(r"^\[([a-z0-9_.-]+)\]\s*(?:#\s*(.*))?$")
GLOSSARY = re.compile(r"^#\s*([a-z0-9_]+(?:\s*(?:,|/)\s*[a-z0-9_]+)*):\s*(.+)$")

HEADER = """# Configuration reference

imagebridge reads one TOML file: `--config PATH`, else `IMAGEBRIDGE_CONFIG`, else `./imagebridge.toml`.
Start from `imagebridge.example.toml`, which sets every key below with a comment. Any key can also come from
the environment as `IMAGEBRIDGE_<KEY>`, nested with `__` (`IMAGEBRIDGE_QUOTA__USER_DAILY=200`). An unknown or
invalid key stops start-up with a message naming it (and the closest known key); `imagebridge check` validates
a file without starting the bot.

Secrets never go in the file (a key named token, password, api_key or secret stops start-up): set
`DISCORD_TOKEN`, `TELEGRAM_TOKEN`, `IMAGEBRIDGE_BACKEND_<NAME>_PASSWORD` and `IMAGEBRIDGE_BACKEND_<NAME>_API_KEY`
in the environment, or as files in the folder named by `IMAGEBRIDGE_SECRETS_DIR`.

This file is generated from the settings models (`python -m bot.configref > docs/configuration.md`).
"""


# Keys the example config sets without a comment of their own, by section.
MEANINGS: dict[str, dict[str, str]] = {
    "quota": {
        "enabled": "charge jobs against the daily quotas below",
    },
    "console": {
        "user": "the user name of the terminal's user in `imagebridge run`",
    },
    "backends.<name>": {
        "enabled": "false keeps the backend configured but unused",
        "connect_timeout_seconds": "give up connecting after this long",
        "quality": "openai: the image quality to ask for",
        "sizes": "openai: model → the sizes it accepts (LocalAI and other compatible servers)",
        "nsfw": "horde: allow workers that generate NSFW images",
        "poll_seconds": "horde: how often to ask for the request's status",
        "max_wait_seconds": "horde: give up on a request after this long",
    },
    "presets.<name>.loras.<name>": {
        "weight": "the weight when the user gives none (`--lora NAME`)",
        "min_weight": "the least weight a user may ask for (`--lora NAME:weight`)",
        "max_weight": "the most weight a user may ask for",
        "description": "shown by /loras",
    },
    "presets.<name>": {
        "steps": "sampling steps when the user gives none",
        "max_steps": "the most steps a user may ask for (--steps)",
        "upscale_factor": "how much the U1… buttons enlarge",
        "name": "set from the table name",
        "description": "shown by /presets",
        "sampler": "the backend's sampler name",
        "scheduler": "the backend's scheduler name (Flux on Forge needs Simple)",
        "cfg_scale": "classifier-free guidance scale",
        "distilled_cfg_scale": "Flux's distilled CFG (3.5); unset for other models",
        "lora_allowlist": "LoRA names users may use in <lora:name> tags",
        "negative_template": "must contain {negative} to use the user's negative prompt",
    },
    "progress": {
        "console_interval_seconds": "in the console",
        "discord_interval_seconds": "on Discord",
        "telegram_private_interval_seconds": "in Telegram private chats",
        "telegram_group_interval_seconds": "in Telegram groups (Telegram allows about 20 edits a minute there)",
    },
    "telegram": {
        "file_base_url": "the file URL of a self-hosted Bot API server",
        "private_progress_interval_seconds": "overrides [progress] telegram_private_interval_seconds",
        "group_progress_interval_seconds": "overrides [progress] telegram_group_interval_seconds",
    },
}
TERM = re.compile(r"(?:^|;\s*)([a-z0-9_]+(?:\s*[,/]\s*[a-z0-9_]+)*):\s*")


def _glossary(line: str, known: set[str]) -> dict[str, str]:
    """`# a / b: text; c: more` (comments above [backends.*] and [presets.*]) → {a: text, b: text, c: more}.

    A `; name:` starts a new entry only when every name is a setting (not `; horde:` inside a description).
    """
    found: dict[str, str] = {}
    matches = [
        match
        for match in TERM.finditer(line)
        if match.start() == 0 or set(re.split(r"\s*[,/]\s*", match.group(1))) <= known
    ]
    for number, match in enumerate(matches):
        end = matches[number + 1].start() if number + 1 < len(matches) else len(line)
        for name in re.split(r"\s*[,/]\s*", match.group(1)):
            found[name] = line[match.end() : end].strip()
    return found


def _generic(dotted: str) -> str:
    """`presets.sdxl.loras.detail` → `presets.<name>.loras.<name>`: named entries as the reference shows them."""
    parts = dotted.split(".")
    if parts[0] in ("backends", "presets") and len(parts) >= 2:
        parts[1] = "<name>"
    if len(parts) >= 4 and parts[2] == "loras":
        parts[3] = "<name>"
    return ".".join(parts)


def example_comments(text: str, known: set[str]) -> dict[str, str]:
    """Dotted key (`quota.user_daily`, `presets.<name>.steps`) → its comment in the example config.

    `known` holds every setting's own name, to tell a new glossary entry from a word followed by a colon.
    """
    found = {f"{section}.{key}": meaning for section, keys in MEANINGS.items() for key, meaning in keys.items()}
    section = ""
    above: list[str] = []
    glossary: dict[str, str] = {}
    last: list[str] = []
    for raw in text.splitlines():
        line = raw.strip()
        # A commented-out example table (`#   [presets.sd15.hires]`) names the section of the keys under it.
        header = SECTION.match(line) or (SECTION.match(line.lstrip("#").strip()) if line.startswith("#") else None)
        if header:
            section = _generic(header.group(1)) + "."
            if section.count(".") == 2 and section.startswith(("backends.", "presets.")):
                for name, meaning in glossary.items():
                    found.setdefault(section + name, meaning)
            if header.group(2) and not line.startswith("#"):  # a commented example's comment is about it alone
                found.setdefault(section[:-1], header.group(2))
            above, last = [], []
        elif key := KEY_LINE.match(line):
            meaning = key.group(3) or " ".join(above)
            if meaning and section != "presets.<name>.":  # comments there are about one preset
                found.setdefault(section + key.group(1), meaning)
            above = []
        elif GLOSSARY.match(line) and raw.startswith("# ") and not raw.startswith("#  "):
            terms = _glossary(line.lstrip("#").strip(), known)
            glossary.update(terms)
            last = [name for name, meaning in terms.items() if meaning == terms[next(reversed(terms))]]
            above = []
        elif raw.startswith("#  ") and last:  # an indented continuation of the glossary entry above
            for name in last:
                glossary[name] += " " + line.lstrip("#").strip()
        elif line.startswith("#"):
            above.append(line.lstrip("#").strip())
            last = []
        else:
            above, last = [], []
    return found


def _type(annotation: Any) -> str:
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is typing.Literal:
        return " \\| ".join(f'`"{arg}"`' for arg in args)
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_type(arg) for arg in args if arg is not type(None)) + " (optional)"
    if origin is typing.Annotated:
        return _type(args[0])
    if origin is list:
        return f"list of {_type(args[0])}" if args else "list"
    if origin is dict:
        return "table"
    if annotation is Path:
        return "path"
    names = {str: "string", int: "integer", float: "number", bool: "boolean", SecretStr: "secret string"}
    return names.get(annotation, str(annotation))


def _default(field: Any) -> str:
    if field.default_factory is not None:
        value = field.default_factory()
        return "" if isinstance(value, BaseModel) else f"`{value!r}`".replace("'", '"')
    if field.default is PydanticUndefined:
        return "required"
    if field.default is None:
        return "unset"
    value = str(field.default) if isinstance(field.default, Path) else field.default
    return f"`{value!r}`".replace("'", '"').replace("True", "true").replace("False", "false")


def _submodel(annotation: Any) -> tuple[type[BaseModel], bool] | None:
    """The model of a section (`[quota]`, an optional `[presets.<name>.hires]`) or of a table of named entries
    (`[backends.<name>]`)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation, False
    args = typing.get_args(annotation)
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        models = [arg for arg in args if isinstance(arg, type) and issubclass(arg, BaseModel)]
        return (models[0], False) if len(models) == 1 else None
    if (
        typing.get_origin(annotation) is dict
        and args
        and isinstance(args[-1], type)
        and issubclass(args[-1], BaseModel)
    ):
        return args[-1], True
    return None


def sections(model: type[BaseModel] = Settings, prefix: str = "") -> list[tuple[str, list[tuple[str, Any]]]]:
    """(section, [(key, field)]) in model order; the top level is the section ""."""
    keys: list[tuple[str, Any]] = []
    nested: list[tuple[str, list[tuple[str, Any]]]] = []
    for name, field in model.model_fields.items():
        sub = _submodel(field.annotation)
        if sub is None:
            keys.append((name, field))
        else:
            inner = f"{prefix}{name}" + (".<name>" if sub[1] else "")
            nested.extend(sections(sub[0], inner + "."))
    return [(prefix.rstrip("."), keys), *nested] if keys or not prefix else nested


def render() -> str:
    example = Path(str(resources.files("bot").joinpath("imagebridge.example.toml"))).read_text(encoding="utf-8")
    comments = example_comments(example, {name for _, keys in sections() for name, _ in keys})
    out = [HEADER]
    for section, keys in sections():
        out.append(f"\n## `[{section}]`\n" if section else "\n## Top level\n")
        if section in comments:
            intro = comments[section].rstrip(":")
            out.append(intro[:1].upper() + intro[1:] + "\n")
        out.append("| key | type | default | meaning |\n|---|---|---|---|")
        for name, field in keys:
            dotted = f"{section}.{name}" if section else name
            meaning = (field.description or comments.get(dotted, "")).replace("|", "\\|")
            out.append(f"| `{name}` | {_type(field.annotation)} | {_default(field)} | {meaning} |")
    return "\n".join(out) + "\n"


if __name__ == "__main__":
    print(render(), end="")
