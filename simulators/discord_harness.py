"""Run the real discord.py bot against the simulator: patch the endpoints, build the app, restart it."""

from __future__ import annotations

import asyncio
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

with warnings.catch_warnings():  # discord.py imports audioop, deprecated in 3.11+ (its voice support; unused here)
    warnings.simplefilter("ignore", DeprecationWarning)
    import discord
import yarl
from pydantic import SecretStr

from adapters.discord import DiscordPlatform, create
from bot.app import App, build_app
from bot.config_discord import DiscordConfig
from bot.ports import Backend
from bot.settings import Settings
from simulators.discord import DiscordSimulator


@contextmanager
def patched(url: str) -> Iterator[None]:
    """Point discord.py's REST and gateway at the simulator; restore both afterwards."""
    base, gateway = discord.http.Route.BASE, discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY
    discord.http.Route.BASE = url + "/api/v10"
    discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(url.replace("http", "ws") + "/gateway")
    try:
        yield
    finally:
        discord.http.Route.BASE, discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = base, gateway


class BotProcess:
    """One bot process: an App plus a DiscordPlatform connected to the simulator."""

    def __init__(self, app: App, platform: DiscordPlatform) -> None:
        self.app = app
        self.platform = platform

    @classmethod
    async def start(
        cls,
        settings: Settings,
        backends: Sequence[Backend],
        sim: DiscordSimulator,
        *,
        ready_within: float = 10.0,
        **config: Any,
    ) -> BotProcess:
        values: dict[str, Any] = {"enabled": True, "guild_ids": ["500"], "progress_interval_seconds": 0}
        values.update(config)
        platform = create(settings, SecretStr("bot-token"), DiscordConfig.model_validate(values))
        app = await build_app(settings, [platform.outbound], backends=list(backends))
        await app.start()
        process = cls(app, platform)
        try:
            await platform.start(app.services)
            async with asyncio.timeout(ready_within):
                await platform.wait_ready()
        except BaseException:
            await process.stop()  # a refused connection leaves nothing open behind it
            raise
        return process

    async def stop(self) -> None:
        await self.platform.stop()
        await self.app.stop()
