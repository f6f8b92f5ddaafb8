"""One entry point for every adapter: run a command or a button, always return a Reply, never raise."""

from __future__ import annotations

import dataclasses
import logging
import secrets
from collections.abc import Awaitable, Callable

from bot.errors import AlreadyHandled, QuotaExceeded, UserError
from bot.i18n import language, t
from bot.replies import Reply
from commands.actions import press
from commands.admin import admin
from commands.cancel import cancel
from commands.context import Invocation, Services, language_for
from commands.edit import edit
from commands.gallery import gallery
from commands.help import help_command
from commands.history import history, show
from commands.imagine import imagine
from commands.loras import loras
from commands.options import coerce
from commands.presets import presets
from commands.queue import queue
from commands.quota import quota
from commands.registry import BY_NAME, CommandInput
from commands.settings import settings
from commands.stats import stats

log = logging.getLogger(__name__)

Handler = Callable[[Services, Invocation, dict[str, object]], Awaitable[Reply]]

HANDLERS: dict[str, Handler] = {
    "imagine": imagine,
    "edit": edit,
    "cancel": cancel,
    "queue": queue,
    "history": history,
    "show": show,
    "quota": quota,
    "stats": stats,
    "presets": presets,
    "loras": loras,
    "help": help_command,
    "admin": admin,
    "settings": settings,
    "gallery": gallery,
}


async def _language(services: Services, invocation: Invocation) -> str:
    try:
        return await language_for(services, invocation)
    except Exception:
        log.exception("could not read the language of %s", invocation.destination.queue_key)
        return language(invocation.locale)


async def _guard(services: Services, invocation: Invocation, run: Awaitable[Reply], what: str) -> Reply:
    try:
        return await run
    except AlreadyHandled:  # another process answered this command already: nothing more to say
        return Reply(text="")
    except QuotaExceeded as exc:
        services.on_quota_denied()
        return Reply.error(exc.localized(await _language(services, invocation)))
    except UserError as exc:
        return Reply.error(exc.localized(await _language(services, invocation)))
    except Exception:
        ref = secrets.token_hex(3)
        log.exception("%s failed (ref %s)", what, ref)
        return Reply.error(t(await _language(services, invocation), "error.internal", ref=ref))


async def dispatch(services: Services, invocation: Invocation, command: CommandInput) -> Reply:
    """Run a parsed command."""
    spec = BY_NAME.get(command.name)
    if spec is None:
        return Reply.error(t(await _language(services, invocation), "error.unknown_command", name=command.name[:32]))

    async def run() -> Reply:
        options = coerce(spec, command.options, command.labels)
        labelled = dataclasses.replace(invocation, labels=command.labels) if command.labels else invocation
        if "private" in options:  # any command that makes results (registry.PRIVATE): overrides /settings
            labelled = dataclasses.replace(labelled, private=bool(options.pop("private")))
        return await HANDLERS[spec.name](services, labelled, options)

    return await _guard(services, invocation, run(), f"/{spec.name}")


async def dispatch_button(services: Services, invocation: Invocation, button_id: str) -> Reply:
    """Run a button press."""
    return await _guard(services, invocation, press(services, invocation, button_id), f"button {button_id[:64]!r}")


async def dispatch_text(
    services: Services, invocation: Invocation, text: str, bot_username: str | None = None
) -> Reply | None:
    """Parse and run a chat message; None when the text is not a command for this bot."""
    from commands.parser import parse

    try:
        command = parse(text, bot_username)
    except UserError as exc:
        return Reply.error(exc.localized(await _language(services, invocation)))
    if command is None:
        return None
    return await dispatch(services, invocation, command)
