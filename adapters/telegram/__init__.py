"""Telegram adapter: python-telegram-bot 22 `Application`, lifecycle driven by hand so it shares the bot's loop."""

from __future__ import annotations

import logging
import os
from typing import Any

from pydantic import SecretStr
from telegram import BotCommand, Update
from telegram.ext import (
    Application,
    ApplicationBuilder,
    BaseHandler,
    CallbackQueryHandler,
    CommandHandler,
    MessageHandler,
    filters,
)

from adapters.telegram.albums import InAlbum
from adapters.telegram.edit_prompt import EditPromptFlow
from adapters.telegram.inbound import CAPTION_COMMAND, TelegramInbound
from adapters.telegram.membership import ChatWatch
from adapters.telegram.outbound import TelegramOutbound
from adapters.telegram.polling import ROLE, PollingTurn, Role
from adapters.telegram.updates import DurableUpdateQueue
from bot.config_telegram import TelegramConfig
from bot.i18n import t
from bot.secret_source import SecretSource
from bot.settings import Settings
from commands.context import Services
from commands.registry import COMMANDS

log = logging.getLogger(__name__)

__all__ = ["TelegramPlatform", "create"]


class TelegramPlatform:
    """The Telegram bot: `outbound` for the engine, `start(services)` / `stop()` for the process."""

    def __init__(
        self,
        application: Application[Any, Any, Any, Any, Any, Any],
        outbound: TelegramOutbound,
        config: TelegramConfig,
        updates: DurableUpdateQueue,
        polling_role: Role | None = None,
    ) -> None:
        self.application = application
        self.updates = updates
        self.outbound = outbound
        self.config = config
        self.inbound: TelegramInbound | None = None
        # Several processes on one PostgreSQL: only the role's holder polls (adapters/telegram/polling.py).
        self.turn = PollingTurn(polling_role, self._poll, self._stop_polling) if polling_role is not None else None

    async def start(self, services: Services) -> None:
        """Log in (getMe), publish the commands, register the handlers and start long polling."""
        app = self.application
        self.outbound.store = services.store
        await app.initialize()
        username = app.bot.username
        inbound = self.inbound = TelegramInbound(services, self.outbound, self.config, username)
        names = sorted({name for spec in COMMANDS for name in (spec.name, *spec.aliases)} | {"start"})
        caption = filters.CaptionRegex(CAPTION_COMMAND)
        # Documents of any type: a command on a file that is not an image is refused, not ignored.
        commands: list[BaseHandler[Update, Any, Any]] = [
            CommandHandler(names, inbound.on_command, block=False),
            MessageHandler((filters.PHOTO | filters.Document.ALL) & caption, inbound.on_caption, block=False),
        ]
        app.add_handlers(commands)
        # Album items, the captioned one too (a group of its own runs beside the command handlers): /edit
        # gathers an album from them. Recorded in the inbox like commands, so an album outlives a restart.
        album = MessageHandler(InAlbum(), inbound.on_album_item, block=False)
        app.add_handler(album, group=-1)
        app.add_handler(CallbackQueryHandler(inbound.on_button, block=False))
        ChatWatch(services, self.outbound).install(app)  # removed, blocked, upgraded to supergroup
        await self.outbound.seed_pacer()  # what the previous run just sent still counts against flood limits
        app.add_error_handler(_log_error)
        await app.bot.set_my_commands(published_commands())
        # Commands go to the inbox before getUpdates confirms them; those left from the last run are replayed.
        self.updates.inbox = services.inbox
        self.updates.wanted = lambda update: any(handler.check_update(update) for handler in [*commands, album])
        await app.start()
        EditPromptFlow(inbound, services).install(app, self.updates)  # replies to the Edit button's prompts
        if self.turn is None:
            await self._poll()
        else:
            log.info("telegram bot @%s sends; it polls when it holds the %s role", username, ROLE)
            self.turn.start()

    async def _poll(self) -> None:
        """Replay the inbox's unhandled commands, then long-poll getUpdates."""
        app = self.application
        await self.updates.replay(app.bot)
        assert app.updater is not None
        await app.updater.start_polling(
            poll_interval=0.0,
            timeout=self.config.poll_timeout_seconds,
            allowed_updates=[Update.MESSAGE, Update.CALLBACK_QUERY, Update.MY_CHAT_MEMBER],
        )
        log.info("telegram bot @%s polling", app.bot.username)

    async def _stop_polling(self) -> None:
        app = self.application
        if app.updater is not None and app.updater.running:
            await app.updater.stop()

    async def stop(self) -> None:
        app = self.application
        if self.turn is not None:
            await self.turn.stop()
        await self._stop_polling()
        if app.running:
            await app.stop()
        self.outbound.calls.closed = True  # sends still asked for (a drain running late) fail at once, not retried
        await app.shutdown()
        await self.outbound.aclose()


def published_commands() -> list[BotCommand]:
    """The command menu: every registry command and alias, plus /start."""
    commands = [BotCommand("start", t("en", "platform.telegram_start"))]
    for spec in COMMANDS:
        for name in (spec.name, *spec.aliases):
            description = (
                spec.description if name == spec.name else t("en", "platform.telegram_alias", command=spec.name)
            )
            commands.append(BotCommand(name, description[:256]))
    return commands


async def _log_error(update: object, context: object) -> None:
    error = getattr(context, "error", None)
    log.error("telegram handler failed: %r", error, exc_info=error if isinstance(error, BaseException) else None)


def create(settings: Settings, token: SecretStr, config: TelegramConfig) -> TelegramPlatform:
    """Build the PTB Application (no network yet) and its Outbound."""
    # Opt in to timedelta time periods (PTB 22.2+): RetryAfter.retry_after without a deprecation warning.
    os.environ.setdefault("PTB_TIMEDELTA", "true")
    progress = settings.progress
    config = config.model_copy(
        update={
            "private_progress_interval_seconds": _first(
                config.private_progress_interval_seconds, progress.telegram_private_interval_seconds
            ),
            "group_progress_interval_seconds": _first(
                config.group_progress_interval_seconds, progress.telegram_group_interval_seconds
            ),
        }
    )
    updates = DurableUpdateQueue()
    application = (
        ApplicationBuilder()
        .token(token.get_secret_value())
        .update_queue(updates)
        .base_url(config.api_base_url)
        .base_file_url(config.file_base_url)
        .concurrent_updates(True)
        .get_updates_read_timeout(config.poll_timeout_seconds + 10)
        # A send that times out may still have been posted; long timeouts make that ambiguity rare.
        .read_timeout(config.read_timeout_seconds)
        .write_timeout(config.read_timeout_seconds)
        .media_write_timeout(config.upload_timeout_seconds)
        .build()
    )
    outbound = TelegramOutbound(application.bot, config)
    log.debug("telegram adapter built for data dir %s", settings.data_dir)
    return TelegramPlatform(application, outbound, config, updates, polling_role(settings))


def polling_role(settings: Settings) -> Role | None:
    """On PostgreSQL, the role that lets one process at a time poll; on SQLite (one process) none."""
    url = settings.storage.url
    if url is None:
        return None
    from storage.postgres.leader import Leadership  # asyncpg only when PostgreSQL is configured

    return Leadership(ROLE, url, SecretSource().get("IMAGEBRIDGE_STORAGE_PASSWORD"))


def _first(value: float | None, default: float) -> float:
    return default if value is None else value
