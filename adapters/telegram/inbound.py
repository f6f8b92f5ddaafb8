"""Telegram updates into command inputs: commands, photo captions, replies to photos and button presses."""

from __future__ import annotations

import logging
import re
import time
from typing import TYPE_CHECKING, Any

from telegram import Chat, Message, Update, User
from telegram.constants import ChatID
from telegram.error import TelegramError
from telegram.ext import ContextTypes

from adapters.telegram.albums import Albums, download, refuse_before_download
from adapters.telegram.deeplink import start_command
from adapters.telegram.outbound import TelegramOutbound
from adapters.telegram.render import MAX_ANSWER, cut
from adapters.telegram.updates import handling
from bot.config_telegram import TelegramConfig
from bot.i18n import t
from bot.models import Destination
from bot.replies import Action, Reply, Tone, parse_button_id
from commands.context import Invocation, Services, language_for
from commands.dispatch import dispatch_button, dispatch_text
from commands.edit import refusal_before_download
from commands.registry import EDIT, IMAGINE

if TYPE_CHECKING:
    from adapters.telegram.edit_prompt import EditPromptFlow

log = logging.getLogger(__name__)

IMAGINE_NAMES = {IMAGINE.name, *IMAGINE.aliases}
EDIT_NAMES = {EDIT.name, *EDIT.aliases}
# A photo or file whose caption runs a command (img2img, /edit)
CAPTION_COMMAND = r"^/(?:" + "|".join(sorted(IMAGINE_NAMES | EDIT_NAMES)) + r")(?:@\w+)?(?:\s|$)"
NAME = re.compile(r"^/([A-Za-z0-9_]+)")
NEW_JOB_ACTIONS = {Action.REROLL, Action.VARY, Action.UPSCALE}
ADMIN_CACHE_SECONDS = 60.0


class TelegramInbound:
    """PTB handlers; each update runs as its own task, validates, enqueues, answers and returns."""

    prompts: EditPromptFlow | None = None  # the Edit button's reply prompts, once installed

    def __init__(
        self, services: Services, outbound: TelegramOutbound, config: TelegramConfig, bot_username: str
    ) -> None:
        self.services = services
        self.outbound = outbound
        self.config = config
        self.bot_username = bot_username
        self._admins: dict[tuple[int, int], tuple[float, bool]] = {}
        self.albums = Albums(config.album_wait_seconds)

    def chat_allowed(self, chat: Chat) -> bool:
        return not self.config.allowed_chats or chat.id in self.config.allowed_chats

    def allowed(self, chat: Chat | None, user: User | None) -> bool:
        if chat is None or user is None or user.is_bot or user.id == ChatID.SERVICE_CHAT:
            return False
        if not self.chat_allowed(chat):
            return False
        return not self.config.allowed_users or user.id in self.config.allowed_users

    async def on_behalf_of_chat(self, message: Message) -> bool:
        """Messages with no person behind them: a linked channel's post is ignored; an anonymous admin or
        someone posting as a channel is told to write as themselves. Either way nothing runs or is charged."""
        sender = message.sender_chat
        if message.is_automatic_forward or (message.from_user and message.from_user.id == ChatID.SERVICE_CHAT):
            log.info("ignored a channel post forwarded into chat %s", message.chat.id)
            return True
        if sender is None:
            return False
        server = await self.services.accounts.server("telegram", str(message.chat.id))
        key = "telegram.anonymous_admin" if sender.id == message.chat.id else "telegram.as_channel"
        await self.outbound.send_text(message.chat.id, Reply.error(t(server.language, key)), message.message_id)
        return True

    async def is_admin(self, chat: Chat, user: User, bot: Any) -> bool:
        """Configured admin users, or administrators of a group (getChatMember, cached a minute)."""
        if user.id in self.config.admin_users:
            return True
        if chat.type == Chat.PRIVATE:
            return False
        key = (chat.id, user.id)
        cached = self._admins.get(key)
        if cached is not None and cached[0] > time.monotonic():
            return cached[1]
        try:
            member = await bot.get_chat_member(chat.id, user.id)
            admin = member.status in ("administrator", "creator")
        except TelegramError as exc:
            log.warning("getChatMember failed in chat %s: %s", chat.id, exc)
            return False
        self._admins[key] = (time.monotonic() + ADMIN_CACHE_SECONDS, admin)
        return admin

    async def invocation(self, chat: Chat, user: User, message_id: int, bot: Any) -> Invocation:
        name = user.username or user.full_name or str(user.id)
        destination = Destination(
            platform="telegram",
            server_id=str(chat.id),
            channel_id=str(chat.id),
            user_id=str(user.id),
            user_name=name,
            source_message_id=str(message_id),
        )
        return Invocation(
            destination=destination, is_admin=await self.is_admin(chat, user, bot), locale=user.language_code
        )

    async def source_image(self, message: Message | None, bot: Any, lang: str) -> bytes | Reply | None:
        """The image of a photo or image-document message (img2img), within the 20 MB download limit.

        A replied-to file or medium that is not an image is refused (nothing queued), never dropped silently.
        """
        if message is None:
            return None
        if message.photo:
            item: Any = message.photo[-1]
        elif message.document and (message.document.mime_type or "").startswith("image/"):
            item = message.document
        elif refused := not_an_image(message):
            return Reply.error(t(lang, "telegram.not_an_image", name=refused[0], mime=refused[1]))
        else:
            return None
        limit = self.config.max_download_bytes
        if item.file_size and item.file_size > limit:
            return Reply.error(t(lang, "error.image_too_large", size=item.file_size / 1e6, limit=limit / 1e6))
        try:
            file = await bot.get_file(item.file_id)
            return bytes(await file.download_as_bytearray())
        except TelegramError as exc:
            return Reply.error(t(lang, "platform.telegram_download_failed", reason=exc.message))

    async def edit_images(
        self, invocation: Invocation, text: str, image: Message | None, arrived: bool, bot: Any
    ) -> list[bytes] | Reply:
        """The images an /edit refers to: the replied-to (or captioned) photo or image file, with the rest of its
        album (`arrived`: the album is still arriving). Refusals come before anything is downloaded."""
        if image is None:
            return []
        members = await self.albums.complete(image) if arrived else self.albums.members(image)
        lang = await language_for(self.services, invocation)
        if arrived and image.media_group_id is not None and len(members) == 1:  # an album has 2 or more items
            return Reply.error(t(lang, "edit.telegram_album_unseen"))
        files = refuse_before_download(members, lang, self.config.max_download_bytes)
        if isinstance(files, Reply):
            return files
        refusal = await refusal_before_download(self.services, invocation, text, self.bot_username, len(files))
        return Reply.error(refusal) if refusal else await download(files, bot, lang)

    async def on_album_item(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """Remember an album item, for an /edit caption that waits for the rest or a later /edit reply."""
        message = update.effective_message
        if message is None or not self.allowed(message.chat, message.from_user):
            return
        self.albums.add(message)
        if not re.match(CAPTION_COMMAND, message.caption or ""):  # a command item's inbox row is its handler's
            async with handling(self.services.inbox, message):
                pass

    async def on_command(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        message = update.effective_message
        if message is None or message.text is None:
            return
        async with handling(self.services.inbox, message):
            await self._command(message, message.text, message.reply_to_message, context)

    async def on_caption(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        message = update.effective_message
        if message is None or message.caption is None:
            return
        async with handling(self.services.inbox, message):
            await self._command(message, message.caption, message, context, arrived=True)

    async def _command(
        self, message: Message, text: str, image: Message | None, context: Any, arrived: bool = False
    ) -> None:
        chat, user = message.chat, message.from_user
        if user is None or not self.chat_allowed(chat) or await self.on_behalf_of_chat(message):
            return
        if not self.allowed(chat, user):
            return
        match = NAME.match(text)
        name = match.group(1).lower() if match else ""
        if name == "start":
            text = start_command(text)  # a deep link's `show_<job>`, or /help
        invocation = await self.invocation(chat, user, message.message_id, context.bot)
        if name in IMAGINE_NAMES:
            source = await self.source_image(image, context.bot, await language_for(self.services, invocation))
            if isinstance(source, Reply):
                await self.outbound.send_text(chat.id, source, message.message_id)
                return
            invocation.source_image = source
        if name in EDIT_NAMES:
            images = await self.edit_images(invocation, text, image, arrived, context.bot)
            if isinstance(images, Reply):
                await self.outbound.send_text(chat.id, images, message.message_id)
                return
            invocation.reference_images = images
        reply = await dispatch_text(self.services, invocation, text, self.bot_username)
        if reply is None:
            return
        queued = name in IMAGINE_NAMES | EDIT_NAMES and reply.job_id is not None and reply.tone is not Tone.ERROR
        await self.answer(chat.id, reply, message.message_id, queued)

    async def answer(self, chat_id: int, reply: Reply, reply_to: int | None, queued: bool) -> None:
        """Send a command's reply; a queued reply becomes the job's status message."""
        if queued and reply.job_id is not None:
            return  # the job's status message is the outbound's: the engine published it when it stored the job
        if not reply.text and not reply.images:
            return  # nothing to say (a command another process answered already)
        if reply.images:
            await self.outbound.send_images(chat_id, reply, reply_to)
        else:
            await self.outbound.send_text(chat_id, reply, reply_to)

    async def on_button(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        query = update.callback_query
        if query is None:
            return
        answered = False
        try:
            message = query.message
            chat = message.chat if message is not None else None
            if chat is None or message is None or not self.allowed(chat, query.from_user):
                return
            invocation = await self.invocation(chat, query.from_user, message.message_id, context.bot)
            reply = await dispatch_button(self.services, invocation, query.data or "")
            answered = await self._answer_button(query, reply, chat.id, message.message_id)
        finally:
            if not answered:
                await self.outbound.call(query.message.chat.id if query.message else 0, query.answer, 3)

    async def _answer_button(self, query: Any, reply: Reply, chat_id: int, message_id: int) -> bool:
        if reply.asks_instruction is not None and self.prompts is not None:  # Edit: a reply prompt (edit_prompt.py)
            await self.prompts.ask(query.message.chat, query.from_user, reply, message_id)
            await self.outbound.call(chat_id, query.answer, 3)  # the spinner stops once the prompt is there
            return True
        try:
            action = parse_button_id(query.data or "")[0]
        except ValueError:
            action = None
        short = len(reply.text) <= MAX_ANSWER and not reply.images and not reply.buttons
        if action in NEW_JOB_ACTIONS and reply.job_id is not None and reply.tone is not Tone.ERROR:
            await self.outbound.call(chat_id, lambda: query.answer("Queued"), 3)
            await self.answer(chat_id, reply, message_id, queued=True)
        elif reply.remove_message and reply.job_id is not None:
            await self.outbound.call(chat_id, lambda: query.answer(cut(reply.text, MAX_ANSWER)), 3)
            await self.outbound.delete_results(reply.job_id, chat_id, message_id)
        elif short:
            alert = reply.tone is Tone.ERROR
            await self.outbound.call(chat_id, lambda: query.answer(reply.text, show_alert=alert), 3)
        else:
            await self.outbound.call(chat_id, query.answer, 3)
            await self.answer(chat_id, reply, message_id, queued=False)
        return True


def not_an_image(message: Message) -> tuple[str, str] | None:
    """(name, type) of a file or medium that is not an image, for the refusal; None when there is none."""
    if message.document is not None:
        document = message.document
        return document.file_name or "file", document.mime_type or "unknown type"
    for kind in ("video", "animation", "video_note", "audio", "voice", "sticker"):
        medium = getattr(message, kind, None)
        if medium is not None:
            name = getattr(medium, "file_name", None) or kind.replace("_", " ")
            return name, getattr(medium, "mime_type", None) or "unknown type"
    return None
