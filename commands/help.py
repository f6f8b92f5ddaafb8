"""/help: every command with its usage, from the shared registry."""

from __future__ import annotations

from bot.i18n import t
from bot.replies import Reply
from commands.context import Invocation, Services, is_admin, language_for
from commands.registry import COMMANDS


async def help_command(services: Services, invocation: Invocation, options: dict[str, object]) -> Reply:
    admin = is_admin(services, invocation)
    lang = await language_for(services, invocation)
    lines = [t(lang, "help.title")]
    for spec in COMMANDS:
        if spec.admin and not admin:
            continue
        lines.append(f"{spec.usage or '/' + spec.name} — {t(lang, f'command.{spec.name}')}")
    lines.append(t(lang, "help.buttons"))
    if invocation.platform == "console":  # a terminal has no attachments: images are given by path
        lines.append(t(lang, "edit.console_help"))
    return Reply(text="\n".join(lines), private=True)
