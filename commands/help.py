"""/help: every command with its usage, from the shared registry."""

from __future__ import annotations

from bot.replies import Reply
from commands.context import Invocation, Services, is_admin
from commands.registry import COMMANDS


async def help_command(services: Services, invocation: Invocation, options: dict[str, object]) -> Reply:
    admin = is_admin(services, invocation)
    lines = ["Commands:"]
    for spec in COMMANDS:
        if spec.admin and not admin:
            continue
        lines.append(f"{spec.usage or '/' + spec.name} — {spec.description}")
    lines.append("Buttons under results: Reroll (new seed), V1… (variations), U1… (upscale), Info, Delete.")
    return Reply(text="\n".join(lines), private=True)
