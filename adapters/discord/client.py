"""The discord.py client: command tree from the registry, persistent buttons, command sync."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import discord
from discord import app_commands

from adapters.discord.commands import CatalogTranslator, add_commands
from adapters.discord.edits import MENU_PREFIX, edit_menu
from adapters.discord.handlers import InteractionHandler
from adapters.discord.render import NO_MENTIONS, JobButton
from bot.config_discord import DiscordConfig
from bot.replies import Action

log = logging.getLogger(__name__)


if TYPE_CHECKING:
    _Client = discord.Client
else:
    _Client = object


class BridgeClient(_Client):
    """Slash commands and buttons only: no privileged intents, no message content."""

    def __init__(self, config: DiscordConfig, handler: InteractionHandler, **options: Any) -> None:
        if config.application_id:
            options["application_id"] = int(config.application_id)
        super().__init__(intents=discord.Intents(guilds=True), allowed_mentions=NO_MENTIONS, **options)
        self.config = config
        self.handler = handler
        self.tree: app_commands.CommandTree[BridgeClient] = app_commands.CommandTree(self)
        add_commands(self.tree, handler.on_command, handler.complete)
        self.tree.add_command(edit_menu(handler.edits))  # the message menu "Edit image"

    async def setup_hook(self) -> None:
        self.add_dynamic_items(JobButton)  # buttons keep working after a restart
        await self.tree.set_translator(CatalogTranslator())
        guilds = [discord.Object(id=int(guild_id)) for guild_id in self.config.guild_ids]
        for guild in guilds:  # the same local tree in every process; only the sync below is shard 0's
            self.tree.copy_global_to(guild=guild)
        if not self.config.sync_commands or not self.config.holds_shard_zero:
            # Commands belong to the application, not to a shard: one process (shard 0's) syncs them, so N
            # processes do not race N identical PUTs against the daily command-create limit.
            return
        for guild in guilds:
            await self.tree.sync(guild=guild)
        if not guilds:
            await self.tree.sync()
        log.info("discord commands synced (%s)", ", ".join(self.config.guild_ids) or "global")

    async def on_guild_available(self, guild: discord.Guild) -> None:
        self.handler.roles.learn(guild)  # configured role names -> this server's role ids

    async def on_guild_join(self, guild: discord.Guild) -> None:
        self.handler.roles.learn(guild)

    async def on_job_button(self, interaction: discord.Interaction[Any], button_id: str) -> None:
        await self.handler.on_button(interaction, button_id)

    async def on_interaction(self, interaction: discord.Interaction[Any]) -> None:
        """Modal submits, by custom id: an edit instruction typed after a restart still reaches its edit."""
        if interaction.type is discord.InteractionType.modal_submit:
            data: Any = interaction.data or {}
            custom_id = str(data.get("custom_id", ""))
            if custom_id.startswith((f"{Action.EDIT.value}:", MENU_PREFIX)):
                await self.handler.edits.on_submit(interaction)


class ImageBridgeClient(BridgeClient, discord.Client):
    """One unsharded gateway connection (no `shard_count` set)."""


class ShardedImageBridgeClient(BridgeClient, discord.AutoShardedClient):
    """The configured `shard_ids` of `shard_count`, each its own gateway session, in this one process."""

    def __init__(self, config: DiscordConfig, handler: InteractionHandler) -> None:
        super().__init__(config, handler, shard_count=config.shard_count, shard_ids=config.local_shards())

    async def on_shard_ready(self, shard_id: int) -> None:
        log.info("discord shard %d of %s ready", shard_id, self.shard_count)


def make_client(config: DiscordConfig, handler: InteractionHandler) -> BridgeClient:
    """The client for the configured layout: sharded when `shard_count` is set."""
    if config.sharded:
        return ShardedImageBridgeClient(config, handler)
    return ImageBridgeClient(config, handler)
