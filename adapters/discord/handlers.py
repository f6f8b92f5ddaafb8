"""Turn interactions into use-case calls and answer each inside Discord's 3 s window."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import discord
from discord import app_commands

from adapters.discord.edits import EditFlows, attachment_source
from adapters.discord.outbound import DiscordOutbound
from adapters.discord.render import render
from adapters.discord.roles import RoleNames
from bot.config_discord import DiscordConfig
from bot.i18n import language, t
from bot.models import Destination
from bot.replies import Action, Reply, Tone, parse_button_id
from commands.context import Invocation, Services
from commands.dispatch import dispatch, dispatch_button
from commands.imagine import allowed_presets
from commands.loras import lora_choices
from commands.registry import BY_NAME, CommandInput

log = logging.getLogger(__name__)

NEW_JOB_ACTIONS = {Action.REROLL, Action.VARY, Action.UPSCALE}
NEW_JOB_COMMANDS = {"imagine", "edit"}


class InteractionHandler:
    """Builds invocations and answers slash commands, autocomplete and button presses."""

    def __init__(self, services: Services, config: DiscordConfig, outbound: DiscordOutbound) -> None:
        self.services = services
        self.config = config
        self.outbound = outbound
        configured = [*config.admin_roles, *services.settings.quota.roles]
        self.roles = RoleNames(configured, config.guild_ids)
        self.edits = EditFlows(self)

    def invocation(self, interaction: discord.Interaction[Any], source: bytes | None = None) -> Invocation:
        user = interaction.user
        guild = str(interaction.guild_id) if interaction.guild_id else f"dm:{user.id}"
        roles = self.roles.keys(user)
        perms = interaction.permissions
        admin = interaction.guild_id is not None and (
            perms.manage_guild or any(role in self.config.admin_roles for role in roles)
        )
        channel = interaction.channel
        nsfw = bool(channel is not None and getattr(channel, "nsfw", False))
        return Invocation(
            destination=Destination(
                platform="discord",
                server_id=guild,
                channel_id=str(interaction.channel_id),
                user_id=str(user.id),
                user_name=user.name,
                source_message_id=str(interaction.id),  # the interaction whose answer becomes the status message
            ),
            is_admin=admin,
            roles=roles,
            channel_nsfw=nsfw,
            source_image=source,
            locale=str(interaction.locale or interaction.guild_locale or "") or None,
        )

    def refused(self, interaction: discord.Interaction[Any]) -> Reply | None:
        if interaction.guild_id is None and not self.config.allow_dms:
            return Reply.error(t(language(str(interaction.locale or "")), "platform.discord_no_dms"))
        return None

    async def on_command(self, interaction: discord.Interaction[Any], name: str, values: dict[str, Any]) -> None:
        refused = self.refused(interaction)
        if refused is not None:
            await self.answer(interaction, refused, new_job=False)
            return
        options = {key: value for key, value in values.items() if value is not None}
        spec = BY_NAME.get(name)
        files = [
            options.pop(o.name) for o in (spec.options if spec else ()) if o.type == "attachment" and o.name in options
        ]
        if name in NEW_JOB_COMMANDS:
            self.outbound.expect(interaction)
        work = asyncio.create_task(self._run_command(interaction, name, options, files))
        await self.answer_when_done(interaction, work, new_job=name in NEW_JOB_COMMANDS, thinking=True)

    async def _run_command(
        self, interaction: discord.Interaction[Any], name: str, options: dict[str, Any], files: list[Any]
    ) -> Reply:
        if name == "edit":  # 1-3 images, each checked like an img2img source (edits.py)
            images = await self.edits.download(interaction, [attachment_source(file) for file in files])
            if isinstance(images, Reply):
                return images
            invocation = self.invocation(interaction)
            invocation.reference_images = images
            return await dispatch(self.services, invocation, CommandInput(name, options))
        source: bytes | None = None
        attachment = files[0] if files else None
        if isinstance(attachment, discord.Attachment):
            limit = self.services.settings.limits.max_source_bytes
            if attachment.size > limit:
                lang = language(str(interaction.locale or ""))
                return Reply.error(
                    t(lang, "platform.discord_image_too_large", size=attachment.size // 1024, limit=limit // 1024)
                )
            try:
                source = await attachment.read()
            except (discord.HTTPException, OSError):
                return Reply.error(t(language(str(interaction.locale or "")), "platform.discord_download_failed"))
        return await dispatch(self.services, self.invocation(interaction, source), CommandInput(name, options))

    async def on_button(self, interaction: discord.Interaction[Any], button_id: str) -> None:
        refused = self.refused(interaction)
        if refused is not None:
            await self.answer(interaction, refused, new_job=False)
            return
        try:
            action = parse_button_id(button_id)[0]
        except ValueError:
            action = Action.INFO
        if action is Action.EDIT:  # a modal must be the first answer: no deferring
            await self.edits.ask(interaction, button_id)
            return
        if action in NEW_JOB_ACTIONS:
            self.outbound.expect(interaction)
        work = asyncio.create_task(dispatch_button(self.services, self.invocation(interaction), button_id))
        await self.answer_when_done(interaction, work, new_job=action in NEW_JOB_ACTIONS, thinking=False)

    async def complete(
        self, interaction: discord.Interaction[Any], option: str, current: str
    ) -> list[app_commands.Choice[str]]:
        """Autocomplete (interaction type 4, answered with type 8): presets, or the chosen preset's LoRAs."""
        if option == "lora":
            preset = getattr(interaction.namespace, "preset", None)
            names = await lora_choices(self.services, self.invocation(interaction), preset, current)
            return [app_commands.Choice(name=name[:100], value=name[:100]) for name in names]
        return await self.complete_preset(interaction, current)

    async def complete_preset(
        self, interaction: discord.Interaction[Any], current: str
    ) -> list[app_commands.Choice[str]]:
        presets = await allowed_presets(self.services, self.invocation(interaction))
        wanted = current.lower()
        return [
            app_commands.Choice(name=f"{p.name} — {p.description}"[:100], value=p.name)
            for p in presets
            if wanted in p.name.lower()
        ][:25]

    async def answer_when_done(
        self, interaction: discord.Interaction[Any], work: asyncio.Task[Reply], new_job: bool, thinking: bool
    ) -> None:
        done, _ = await asyncio.wait({work}, timeout=self.config.respond_within_seconds)
        if not done:  # slow (a download, a busy database): acknowledge now, answer with a follow-up
            await self.outbound.defer(interaction, thinking)
        reply = await work
        await self.answer(interaction, reply, new_job=new_job)

    async def answer(self, interaction: discord.Interaction[Any], reply: Reply, new_job: bool) -> None:
        if new_job and reply.job_id is not None and reply.tone is not Tone.ERROR:
            return  # the job's status message is the outbound's: it answers the interaction with the first status
        self.outbound.forget(interaction)
        if reply.remove_message and interaction.message is not None:
            await self._remove_source(interaction)
        rendered = await asyncio.to_thread(render, reply, interaction.filesize_limit)
        await self.outbound.respond(interaction, rendered, reply.private)

    async def _remove_source(self, interaction: discord.Interaction[Any]) -> None:
        try:
            if not interaction.response.is_done():
                await interaction.response.defer()
            await interaction.delete_original_response()
        except discord.HTTPException as exc:
            log.warning("could not delete message %s: %s", getattr(interaction.message, "id", "?"), exc)
