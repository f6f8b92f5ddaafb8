"""The one list of commands and options that every adapter reads (slash commands, Telegram, console)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

OptionType = Literal["string", "integer", "number", "attachment", "choice", "boolean"]
MAX_SEED = 2**32 - 1


@dataclass(frozen=True)
class OptionSpec:
    """One option. `flags` are the short names the text syntax accepts (`--ar` for `aspect`)."""

    name: str
    type: OptionType
    description: str
    required: bool = False
    flags: tuple[str, ...] = ()
    minimum: float | None = None
    maximum: float | None = None
    choices: tuple[str, ...] = ()
    autocomplete: bool = False
    repeatable: bool = False  # the text syntax may give it more than once (values joined with ", ")
    positional: bool = False  # takes the free text after the command name

    @property
    def all_flags(self) -> tuple[str, ...]:
        return (self.name, *self.flags)


@dataclass(frozen=True)
class CommandSpec:
    name: str
    description: str
    options: tuple[OptionSpec, ...] = ()
    aliases: tuple[str, ...] = ()
    admin: bool = False
    usage: str = ""

    def option(self, name: str) -> OptionSpec | None:
        for option in self.options:
            if name in option.all_flags:
                return option
        return None

    @property
    def positional(self) -> OptionSpec | None:
        return next((option for option in self.options if option.positional), None)


ASPECTS = ("1:1", "3:2", "2:3", "4:3", "3:4", "16:9", "9:16")

# A flag in the text syntax (`--private`, `--private=no`); a true/false option on Discord. Any command that makes
# results may list it: dispatch turns it into `Invocation.private`, which the job's destination takes.
PRIVATE = OptionSpec("private", "boolean", "Send the result to you privately (DM); overrides /settings")

JOB = OptionSpec("job", "string", "Job id (from the queued message or /history)", positional=True)

IMAGINE = CommandSpec(
    name="imagine",
    description="Generate images from a prompt",
    aliases=("img", "draw"),
    usage=(
        '/imagine <prompt> [--preset p] [--ar 16:9] [--seed n] [--steps n] [--n count] [--neg "…"]'
        " [--lora name[:weight]] [--private]"
    ),
    options=(
        OptionSpec("prompt", "string", "What to draw", required=True, positional=True),
        OptionSpec("negative", "string", "What to avoid", flags=("neg",)),
        OptionSpec("preset", "string", "Model preset (see /presets)", autocomplete=True),
        OptionSpec("aspect", "choice", "Aspect ratio", flags=("ar",), choices=ASPECTS),
        OptionSpec("seed", "integer", "Seed for a repeatable image", minimum=0, maximum=MAX_SEED),
        OptionSpec("steps", "integer", "Sampling steps", minimum=1, maximum=500),
        OptionSpec("count", "integer", "How many images", flags=("n",), minimum=1, maximum=10),
        OptionSpec("image", "attachment", "Start from this image (img2img)"),
        OptionSpec("strength", "number", "How far to move from the image (0.05–1)", minimum=0.05, maximum=1.0),
        OptionSpec(
            "lora", "string", "LoRA name[:weight], comma-separated (see /loras)", autocomplete=True, repeatable=True
        ),
        PRIVATE,
    ),
)

EDIT = CommandSpec(
    name="edit",
    description="Edit images by instruction (reply to or attach 1–3 images)",
    usage=(
        '/edit <instruction> [--preset p] [--ar 16:9] [--seed n] [--steps n] [--n count] [--neg "…"]'
        " [--private] (reply to 1–3 images, or --job <id> --image n)"
    ),
    options=(
        OptionSpec(
            "instruction",
            "string",
            "What to change, e.g. “make it night” or “put the cat from image 2 on the sofa”",
            required=True,
            positional=True,
        ),
        OptionSpec("negative", "string", "What to avoid", flags=("neg",)),
        OptionSpec("preset", "string", "Edit preset (see /presets)", autocomplete=True),
        OptionSpec("aspect", "choice", "Aspect ratio (default: the first image's)", flags=("ar",), choices=ASPECTS),
        OptionSpec("seed", "integer", "Seed for a repeatable edit", minimum=0, maximum=MAX_SEED),
        OptionSpec("steps", "integer", "Sampling steps", minimum=1, maximum=500),
        OptionSpec("count", "integer", "How many results", flags=("n",), minimum=1, maximum=10),
        OptionSpec("reference", "attachment", "The image to change"),
        OptionSpec("reference2", "attachment", "A second reference image"),
        OptionSpec("reference3", "attachment", "A third reference image"),
        OptionSpec("job", "string", "Edit a result of this job instead (with image)"),
        OptionSpec("image", "integer", "Which image of that job (from 1)", minimum=1, maximum=10),
        PRIVATE,
    ),
)

ADMIN = CommandSpec(
    name="admin",
    description="Server administration",
    admin=True,
    usage=(
        "/admin quota user|role|server <user id or role id> <daily cost> · /admin ban|unban <user id> · "
        '/admin block|unblock ["word or phrase"] · /admin allow|deny <preset> [channel id] · '
        "/admin default <preset> · /admin pause|resume · /admin backends · /admin drain|undrain <backend> · "
        "/admin language en|zh"
    ),
    options=(
        OptionSpec(
            "action",
            "choice",
            "What to do",
            required=True,
            positional=True,
            choices=(
                "quota",
                "ban",
                "unban",
                "block",
                "unblock",
                "allow",
                "deny",
                "default",
                "pause",
                "resume",
                "backends",
                "drain",
                "undrain",
                "language",
            ),
        ),
        OptionSpec(
            "target", "string", "User id, role, preset, word to block, 'user'/'role'/'server' or a language (en, zh)"
        ),
        OptionSpec("value", "string", "Amount, role id (or @role) or channel id"),
        OptionSpec("extra", "string", "Amount for quota role/user"),
    ),
)

SETTINGS = CommandSpec(
    name="settings",
    description="Your defaults here: preset, aspect ratio, steps, negative prompt, private results, language",
    usage="/settings [preset|aspect|steps|negative|private|language|reset] [value]",
    options=(
        OptionSpec(
            "key",
            "choice",
            "What to change (no value: back to the default)",
            positional=True,
            choices=("preset", "aspect", "steps", "negative", "private", "language", "reset"),
        ),
        OptionSpec("value", "string", "The new value (on or off for private, en or zh for language)"),
    ),
)

COMMANDS: tuple[CommandSpec, ...] = (
    IMAGINE,
    EDIT,
    CommandSpec("cancel", "Cancel a queued or running job (yours, or the last one)", (JOB,), usage="/cancel [job]"),
    CommandSpec("queue", "Show the queue of this server", usage="/queue"),
    CommandSpec("history", "Your recent jobs", usage="/history"),
    CommandSpec(
        "show",
        "Show a finished job again with its buttons",
        (OptionSpec("job", "string", "Job id", required=True, positional=True),),
        usage="/show <job>",
    ),
    CommandSpec("quota", "Your quota and what is left today", usage="/quota"),
    CommandSpec("stats", "Images and cost per user on this server, today and this week", usage="/stats"),
    CommandSpec("presets", "The presets you can use here", usage="/presets"),
    CommandSpec(
        "loras",
        "The LoRAs a preset offers, with their trigger words",
        (OptionSpec("preset", "string", "Model preset (see /presets)", positional=True, autocomplete=True),),
        usage="/loras [preset]",
    ),
    CommandSpec("help", "How to use this bot", usage="/help"),
    ADMIN,
    SETTINGS,
    CommandSpec("gallery", "A private sign-in link to the web gallery", usage="/gallery"),
)

BY_NAME: dict[str, CommandSpec] = {name: spec for spec in COMMANDS for name in (spec.name, *spec.aliases)}


@dataclass
class CommandInput:
    """A command as an adapter received it: the name and raw or typed option values."""

    name: str
    options: dict[str, object] = field(default_factory=dict)
    labels: dict[str, str] = field(default_factory=dict)  # option name → as typed ("--n"), for messages
