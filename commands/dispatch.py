"""One entry point for every adapter: run a command or a button, always return a Reply, never raise."""

from __future__ import annotations

import logging
import secrets
from collections.abc import Awaitable, Callable

from bot.errors import QuotaExceeded, UserError
from bot.replies import Reply
from commands.actions import press
from commands.admin import admin
from commands.cancel import cancel
from commands.context import Invocation, Services
from commands.help import help_command
from commands.history import history, show
from commands.imagine import imagine
from commands.options import coerce
from commands.presets import presets
from commands.queue import queue
from commands.quota import quota
from commands.registry import BY_NAME, CommandInput

log = logging.getLogger(__name__)

Handler = Callable[[Services, Invocation, dict[str, object]], Awaitable[Reply]]

HANDLERS: dict[str, Handler] = {
    "imagine": imagine,
    "cancel": cancel,
    "queue": queue,
    "history": history,
    "show": show,
    "quota": quota,
    "presets": presets,
    "help": help_command,
    "admin": admin,
}


async def _guard(services: Services, run: Awaitable[Reply], what: str) -> Reply:
    try:
        return await run
    except QuotaExceeded as exc:
        services.on_quota_denied()
        return Reply.error(str(exc))
    except UserError as exc:
        return Reply.error(str(exc))
    except Exception:
        ref = secrets.token_hex(3)
        log.exception("%s failed (ref %s)", what, ref)
        return Reply.error(f"Something went wrong (ref {ref}). Nothing was queued or charged.")


async def dispatch(services: Services, invocation: Invocation, command: CommandInput) -> Reply:
    """Run a parsed command."""
    spec = BY_NAME.get(command.name)
    if spec is None:
        return Reply.error(f"Unknown command /{command.name[:32]}. Try /help.")

    async def run() -> Reply:
        options = coerce(spec, command.options)
        return await HANDLERS[spec.name](services, invocation, options)

    return await _guard(services, run(), f"/{spec.name}")


async def dispatch_button(services: Services, invocation: Invocation, button_id: str) -> Reply:
    """Run a button press."""
    return await _guard(services, press(services, invocation, button_id), f"button {button_id[:64]!r}")


async def dispatch_text(
    services: Services, invocation: Invocation, text: str, bot_username: str | None = None
) -> Reply | None:
    """Parse and run a chat message; None when the text is not a command for this bot."""
    from commands.parser import parse

    try:
        command = parse(text, bot_username)
    except UserError as exc:
        return Reply.error(str(exc))
    if command is None:
        return None
    return await dispatch(services, invocation, command)
