"""`imagebridge run`: every enabled platform and backend until Ctrl-C or SIGTERM (part of the composition root)."""

from __future__ import annotations

import asyncio
import logging
import signal
from typing import Protocol

from adapters.console.outbound import ConsoleOutbound
from adapters.console.session import ConsoleSession
from bot.app import build_app
from bot.errors import ConfigError
from bot.ports import Outbound
from bot.secret_source import SecretSource
from bot.settings import Settings
from commands.context import Services

log = logging.getLogger(__name__)


class Platform(Protocol):
    """A chat platform adapter: an Outbound for the engine, and a connection started with the services."""

    @property
    def outbound(self) -> Outbound: ...

    async def start(self, services: Services) -> None: ...

    async def stop(self) -> None: ...


def build_platforms(settings: Settings) -> list[Platform]:
    """The chat platforms the config enables; a missing token stops start-up with a clear message."""
    platforms: list[Platform] = []
    secrets = SecretSource()
    if settings.discord.enabled:
        from adapters.discord import create as create_discord

        discord_token = secrets.get("DISCORD_TOKEN")
        if discord_token is None:
            raise ConfigError("discord.enabled is true but DISCORD_TOKEN is not set (environment or secrets folder)")
        platforms.append(create_discord(settings, discord_token, settings.discord))
    if settings.telegram.enabled:
        from adapters.telegram import create as create_telegram

        token = secrets.get("TELEGRAM_TOKEN")
        if token is None:
            raise ConfigError("telegram.enabled is true but TELEGRAM_TOKEN is not set (environment or secrets folder)")
        platforms.append(create_telegram(settings, token, settings.telegram))
    return platforms


async def run_bot(settings: Settings) -> int:
    """Start every enabled platform and backend; stop cleanly on Ctrl-C or SIGTERM."""
    platforms = build_platforms(settings)
    outbounds: list[Outbound] = [platform.outbound for platform in platforms]
    console = None
    if settings.console.enabled:
        console = ConsoleOutbound(interval=settings.progress.console_interval_seconds)
        outbounds.append(console)
    started: list[Platform] = []
    app = await build_app(
        settings, outbounds, platforms_status=lambda: {p.outbound.platform: p in started for p in platforms}
    )
    await app.start()
    stop, forced = asyncio.Event(), asyncio.Event()
    _stop_on_signals(stop, forced)
    tasks = []
    try:
        for platform in platforms:
            await platform.start(app.services)
            started.append(platform)
        if console is not None:
            session = ConsoleSession(app.services, console, settings.console.user, admin=True)
            tasks.append(asyncio.create_task(_until_done(session.interact(), stop)))
        log.info(
            "imagebridge running: %d platform(s)%s, %d backend(s); Ctrl-C stops",
            len(started),
            " and the console" if console is not None else "",
            len(app.backends),
        )
        await stop.wait()
        running = app.engine.busy_workers()
        if running:
            log.info(
                "stopping: no new jobs; %d running job(s) have %.0f s to finish (Ctrl-C again stops at once)",
                running,
                settings.shutdown_grace_seconds,
            )
        else:
            log.info("stopping")
        await app.engine.drain(settings.shutdown_grace_seconds)
    except asyncio.CancelledError:
        if not forced.is_set():
            raise
        log.warning("stopping at once; running jobs are put back in the queue for the next start")
    finally:
        for task in tasks:
            task.cancel()
        for platform in reversed(started):
            await platform.stop()
        await app.stop()
    return 0


def _stop_on_signals(stop: asyncio.Event, forced: asyncio.Event) -> None:
    """The first Ctrl-C (or SIGTERM) stops gracefully; a second one cancels the shutdown and stops at once."""
    loop = asyncio.get_running_loop()
    main = asyncio.current_task()

    def on_signal() -> None:
        if stop.is_set() and main is not None:
            forced.set()
            main.cancel()
        stop.set()

    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, on_signal)


async def _until_done(run: asyncio.Future[None] | object, stop: asyncio.Event) -> None:
    await run  # type: ignore[misc]
    stop.set()
