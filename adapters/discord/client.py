"""The discord.py client: command tree from the registry, persistent buttons, command sync."""

from __future__ import annotations

import logging
from typing import Any

import discord
from discord import app_commands

from adapters.discord.commands import CatalogTranslator, add_commands
from adapters.discord.edits import MENU_PREFIX, edit_menu
from adapters.discord.handlers import InteractionHandler
from adapters.discord.render import NO_MENTIONS, JobButton
from bot.config_discord import DiscordConfig
from bot.replies import Action

log = logging.getLogger(__name__)


class ImageBridgeClient(discord.Client):
    """Slash commands and buttons only: no privileged intents, no message content."""

    def __init__(self, config: DiscordConfig, handler: InteractionHandler) -> None:
        options: dict[str, Any] = {"application_id": int(config.application_id)} if config.application_id else {}
        super().__init__(intents=discord.Intents(guilds=True), allowed_mentions=NO_MENTIONS, **options)
        self.config = config
        self.handler = handler
        self.tree: app_commands.CommandTree[ImageBridgeClient] = app_commands.CommandTree(self)
        add_commands(self.tree, handler.on_command, handler.complete)
        self.tree.add_command(edit_menu(handler.edits))  # the message menu "Edit image"

    async def setup_hook(self) -> None:
        self.add_dynamic_items(JobButton)  # buttons keep working after a restart
        await self.tree.set_translator(CatalogTranslator())
        if not self.config.sync_commands:
            return
        if self.config.guild_ids:
            for guild_id in self.config.guild_ids:
                guild = discord.Object(id=int(guild_id))
                self.tree.copy_global_to(guild=guild)
                await self.tree.sync(guild=guild)
        else:
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
