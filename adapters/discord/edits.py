"""Editing on Discord: /edit's attachments, the message menu "Edit image", and the modal that asks for the
instruction (the Edit button and the menu open it).

A modal can only be the first answer to a command or a button (never to a modal submit), so the access check
of the Edit button runs before it opens. The submit is handled by its custom id in `on_interaction`, never by
discord.py's in-memory modal store, so an instruction typed across a restart still counts:
`edit:<job>:<index>` edits that stored image (read back from the store, with /show's access rule);
`editmsg:<id>` edits the images of the message the menu was used on (kept in memory for 15 minutes: a
message's attachments are not readable later without the message-content intent).
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import discord
from discord import app_commands

from bot.i18n import language, t
from bot.presets import MAX_REFERENCES
from bot.replies import Reply
from commands.actions import edit_input
from commands.dispatch import dispatch, dispatch_button
from commands.registry import CommandInput

if TYPE_CHECKING:
    from adapters.discord.handlers import InteractionHandler

log = logging.getLogger(__name__)

INPUT_ID = "instruction"
MENU_PREFIX = "editmsg:"
MENU_KEEP_SECONDS = 15 * 60  # an interaction's lifetime: a modal left open longer is asked again
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".gif")
MAX_IMAGES = MAX_REFERENCES  # what /edit takes; the menu takes a message's first three images


@dataclass(frozen=True)
class Source:
    """One image a user pointed at: where Discord serves it, and what Discord says it is."""

    name: str
    url: str
    size: int | None = None
    content_type: str | None = None

    @property
    def is_image(self) -> bool:
        if self.content_type:
            return self.content_type.startswith("image/")
        return self.name.lower().endswith(IMAGE_SUFFIXES)


def attachment_source(attachment: discord.Attachment) -> Source:
    return Source(attachment.filename, attachment.url, attachment.size, attachment.content_type)


def images_of(message: discord.Message) -> list[Source]:
    """The images of a message: image attachments, then embedded images (a bot's `image`, an unfurled link's
    picture, which Discord puts in `thumbnail`)."""
    found = [attachment_source(a) for a in message.attachments if attachment_source(a).is_image]
    for embed in message.embeds:
        url = embed.image.url or (embed.thumbnail.url if embed.type == "image" else None)
        if url:
            found.append(Source(url.rsplit("/", 1)[-1].split("?")[0] or "image", url))
    return found


class InstructionModal(discord.ui.Modal):
    """One paragraph input for the instruction; its submit is handled by custom id (see the module doc)."""

    def __init__(self, custom_id: str, title: str, label: str, placeholder: str, max_length: int) -> None:
        super().__init__(title=title[:45], custom_id=custom_id, timeout=None)
        text: discord.ui.TextInput[Any] = discord.ui.TextInput(
            custom_id=INPUT_ID, style=discord.TextStyle.paragraph, placeholder=placeholder[:100], max_length=max_length
        )
        self.add_item(discord.ui.Label(text=label[:45], component=text))


def submitted_text(data: Any) -> str:
    """The instruction typed into a submitted modal (its components, as Label or Action Row)."""
    for component in data.get("components", []) if isinstance(data, dict) else []:
        for item in (component.get("component"), *component.get("components", [])):
            if isinstance(item, dict) and item.get("custom_id") == INPUT_ID:
                return str(item.get("value") or "")
    return ""


class EditFlows:
    """The Discord side of editing, for one InteractionHandler."""

    def __init__(self, handler: InteractionHandler) -> None:
        self.handler = handler
        self._menus: dict[str, tuple[float, list[Source]]] = {}  # modal custom id -> (when, the message's images)

    def _lang(self, interaction: discord.Interaction[Any]) -> str:
        return language(str(interaction.locale or ""))

    async def _modal(self, interaction: discord.Interaction[Any], custom_id: str, index: int | None) -> None:
        """The instruction form; its title names the image (the Edit button) or is the menu's name."""
        lang = self._lang(interaction)
        limit = min(4000, self.handler.services.settings.limits.max_prompt_chars)
        title = t(lang, "edit_prompt.modal_title", index=index) if index else t(lang, "edit_prompt.menu")
        modal = InstructionModal(
            custom_id,
            title,
            t(lang, "edit_prompt.modal_label"),
            t(lang, "edit_prompt.placeholder"),
            limit,
        )
        modal.stop()  # not kept in discord.py's modal store: the submit is routed by custom id (on_submit)
        await interaction.response.send_modal(modal)

    async def ask(self, interaction: discord.Interaction[Any], button_id: str) -> None:
        """The Edit button: the same checks as any button, then a modal, which must be the first answer."""
        check = dispatch_button(self.handler.services, self.handler.invocation(interaction), button_id)
        work = asyncio.create_task(check)
        done, _ = await asyncio.wait({work}, timeout=self.handler.config.respond_within_seconds)
        if not done:  # too late for a form, which must be the first answer: acknowledge, then say so
            await interaction.response.defer(ephemeral=True, thinking=True)  # the followup keeps it private
            await work
            await self.handler.answer(interaction, Reply.error(t(self._lang(interaction), "edit_prompt.busy")), False)
            return
        reply = work.result()
        if reply.asks_instruction is None:
            await self.handler.answer(interaction, reply, new_job=False)
            return
        index = int(reply.asks_instruction.rsplit(":", 1)[1]) + 1
        await self._modal(interaction, reply.asks_instruction, index)

    async def menu(self, interaction: discord.Interaction[Any], message: discord.Message) -> None:
        """ "Edit image" on a message: its first three images, then the modal."""
        refused = self.handler.refused(interaction)
        sources = images_of(message)
        if refused is not None or not sources:
            no_images = Reply.error(t(self._lang(interaction), "edit_prompt.no_images"))
            await self.handler.answer(interaction, refused or no_images, new_job=False)
            return
        now = time.monotonic()
        self._menus = {key: value for key, value in self._menus.items() if now - value[0] < MENU_KEEP_SECONDS}
        custom_id = f"{MENU_PREFIX}{interaction.id}"
        self._menus[custom_id] = (now, sources[:MAX_IMAGES])
        await self._modal(interaction, custom_id, None)

    async def on_submit(self, interaction: discord.Interaction[Any]) -> None:
        """A submitted instruction modal: run the edit it stands for."""
        data: Any = interaction.data or {}
        custom_id, text = str(data.get("custom_id", "")), submitted_text(data)
        refused = self.handler.refused(interaction)
        if refused is not None:
            await self.handler.answer(interaction, refused, new_job=False)
            return
        self.handler.outbound.expect(interaction)
        work = asyncio.create_task(self._run(interaction, custom_id, text))
        await self.handler.answer_when_done(interaction, work, new_job=True, thinking=True)

    async def _run(self, interaction: discord.Interaction[Any], custom_id: str, text: str) -> Reply:
        services, invocation = self.handler.services, self.handler.invocation(interaction)
        if not custom_id.startswith(MENU_PREFIX):
            return await dispatch(services, invocation, edit_input(custom_id, text))
        kept = self._menus.pop(custom_id, None)
        if kept is None:  # the bot restarted, or the modal stayed open too long
            return Reply.error(t(self._lang(interaction), "edit_prompt.menu_expired"))
        images = await self.download(interaction, kept[1])
        if isinstance(images, Reply):
            return images
        invocation.reference_images = images
        return await dispatch(services, invocation, CommandInput("edit", {"instruction": text}))

    async def download(self, interaction: discord.Interaction[Any], sources: list[Source]) -> list[bytes] | Reply:
        """Each image checked (type, size as Discord reports it) before it is downloaded; a refusal names it."""
        lang, limit = self._lang(interaction), self.handler.services.settings.limits.max_source_bytes
        for number, source in enumerate(sources, start=1):
            if not source.is_image:
                mime = source.content_type or "?"  # Discord did not say; the name shows what it is
                return Reply.error(
                    t(lang, "edit_prompt.discord_not_an_image", number=number, name=source.name, mime=mime)
                )
            if source.size is not None and source.size > limit:
                size, most = source.size // 1024, limit // 1024
                return Reply.error(t(lang, "edit_prompt.discord_image_too_large", number=number, size=size, limit=most))
        images = []
        for number, source in enumerate(sources, start=1):
            try:
                images.append(await interaction.client.http.get_from_cdn(source.url))
            except (discord.HTTPException, OSError):
                return Reply.error(t(lang, "edit_prompt.discord_download_failed", number=number))
        return images


def edit_menu(flows: EditFlows) -> app_commands.ContextMenu:
    """The message context-menu command "Edit image" (localized like the slash commands)."""

    async def callback(interaction: discord.Interaction[Any], message: discord.Message) -> None:
        await flows.menu(interaction, message)

    name = app_commands.locale_str(t("en", "edit_prompt.menu"), key="edit_prompt.menu")
    return app_commands.ContextMenu(name=name, callback=callback)
