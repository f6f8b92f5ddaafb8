"""Discord adapter: slash commands, live progress and persistent buttons (discord.py 2.x)."""

from __future__ import annotations

import asyncio
import logging
import warnings

with warnings.catch_warnings():  # discord.py imports audioop, deprecated in 3.11+ (its voice support; unused here)
    warnings.simplefilter("ignore", DeprecationWarning)
    import discord  # noqa: F401

from pydantic import SecretStr

from adapters.discord.client import BridgeClient, make_client
from adapters.discord.handlers import InteractionHandler
from adapters.discord.outbound import DiscordOutbound
from adapters.discord.shards import raise_refusal
from bot.config_discord import DiscordConfig
from bot.lifecycle import stop_tasks
from bot.settings import Settings
from commands.context import Services

log = logging.getLogger(__name__)


class DiscordPlatform:
    """One Discord bot connection; `outbound` goes to build_app, `start` runs once services exist."""

    def __init__(self, settings: Settings, token: SecretStr, config: DiscordConfig) -> None:
        self.settings = settings
        self.config = config
        self._token = token
        self.outbound = DiscordOutbound(config, settings.progress.discord_interval_seconds)
        self.client: BridgeClient | None = None
        self._task: asyncio.Task[None] | None = None
        self.failure: str | None = None  # why the gateway connection ended, when it did

    async def start(self, services: Services) -> None:
        """Log in and connect in the background; returns once the gateway session is ready."""
        self.outbound.services = services
        handler = InteractionHandler(services, self.config, self.outbound)
        self.client = make_client(self.config, handler)
        self.outbound.client = self.client
        await self.client.login(self._token.get_secret_value())
        self._task = asyncio.create_task(self._connect(self.client), name="discord-gateway")

    async def _connect(self, client: BridgeClient) -> None:
        try:
            await client.connect(reconnect=True)
        except Exception as exc:
            try:
                await raise_refusal(exc, self.config, self._token.get_secret_value())
            except RuntimeError as refused:  # a shard layout Discord refuses: say what to set, no traceback
                log.error("%s", refused)
                self.failure = str(refused)
            else:
                log.exception("discord connection ended")
                self.failure = repr(exc)

    async def wait_ready(self) -> None:
        """Until every local shard is ready; raises RuntimeError when the connection ended first."""
        if self.client is None or self._task is None:
            return
        ready = asyncio.ensure_future(self.client.wait_until_ready())
        try:
            await asyncio.wait({ready, self._task}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            ready.cancel()
        if not ready.done():  # the connection ended before every shard was ready
            raise RuntimeError(self.failure or "discord connection ended")

    async def stop(self) -> None:
        if self.client is not None:
            await self.client.close()
        if self._task is not None:
            await stop_tasks([self._task])
        self.outbound.client = None


def create(settings: Settings, token: SecretStr, config: DiscordConfig) -> DiscordPlatform:
    """Build the Discord platform; nothing connects until `start`."""
    return DiscordPlatform(settings, token, config)
