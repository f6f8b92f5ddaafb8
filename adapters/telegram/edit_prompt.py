"""The Edit button on Telegram: a prompt that asks the presser for the instruction, and their reply to it.

Telegram has no forms, so the press is answered with a message that mentions the presser and carries a
selective ForceReply: their client opens a reply to it (others' do not; the mention is a `text_mention`, which
works for users without a username). The prompt is remembered in the store (bot/edit_prompts.py), so a reply
after a restart still edits the image; replies are recorded in the inbox like commands. ForceReply is only a
hint to the clients, so a reply from anyone else is answered with a note and runs nothing.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from telegram import Chat, ForceReply, Message, MessageEntity, Update, User
from telegram.ext import Application, ContextTypes, MessageHandler, filters

from adapters.telegram.render import MAX_TEXT, cut, quiet
from adapters.telegram.updates import DurableUpdateQueue, handling
from bot.edit_prompts import EditPrompt
from bot.i18n import t
from bot.replies import Reply, Tone
from commands.actions import edit_input
from commands.context import Services, language_for
from commands.dispatch import dispatch

if TYPE_CHECKING:
    from adapters.telegram.inbound import TelegramInbound

log = logging.getLogger(__name__)

PLATFORM = "telegram"


class ReplyToBot(filters.MessageFilter):
    """A text message (not a command) that replies to one of this bot's messages."""

    def __init__(self, bot_id: int) -> None:
        super().__init__(name="ReplyToBot")
        self.bot_id = bot_id

    def filter(self, message: Message) -> bool:
        replied = message.reply_to_message
        sender = replied.from_user if replied is not None else None
        text = message.text or ""
        return sender is not None and sender.id == self.bot_id and bool(text) and not text.startswith("/")


def utf16(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def mention(user: User) -> tuple[str, MessageEntity]:
    """The presser's name as sent (mentions neutralised, as in every text) and its text_mention at offset 0."""
    name = quiet(user.full_name)
    return name, MessageEntity(MessageEntity.TEXT_MENTION, 0, utf16(name), user=user)


class EditPromptFlow:
    """Asks for an Edit button's instruction and runs the presser's reply as that /edit."""

    def __init__(self, inbound: TelegramInbound, services: Services) -> None:
        self.inbound = inbound
        self.services = services

    def install(self, app: Application[Any, Any, Any, Any, Any, Any], updates: DurableUpdateQueue) -> None:
        """Handle replies to the bot's messages and record them in the inbox before Telegram is told."""
        handler = MessageHandler(ReplyToBot(app.bot.id), self.on_reply, block=False)
        app.add_handler(handler)
        wanted = updates.wanted
        updates.wanted = lambda update: wanted(update) or bool(handler.check_update(update))
        self.inbound.prompts = self

    async def ask(self, chat: Chat, user: User, reply: Reply, message_id: int) -> None:
        """The prompt, as a reply to the result the button was under, and remembered once it is sent."""
        assert reply.asks_instruction is not None
        bot = self.inbound.outbound.bot
        invocation = await self.inbound.invocation(chat, user, message_id, bot)
        lang = await language_for(self.services, invocation)
        name, entity = mention(user)
        text = name + ": " + cut(reply.text, MAX_TEXT - len(name) - 2)
        markup = ForceReply(selective=True, input_field_placeholder=t(lang, "edit_prompt.placeholder")[:64])
        sent, message = await self.inbound.outbound.calls.call(
            chat.id,
            lambda chat_id: bot.send_message(
                chat_id,
                text,
                entities=[entity],
                reply_markup=markup,
                reply_to_message_id=message_id,
                allow_sending_without_reply=True,
            ),
            self.inbound.config.max_send_attempts,
            messages=1,
        )
        if not sent or message is None or self.services.edit_prompts is None:
            return
        prompt = EditPrompt(
            PLATFORM, str(message.chat.id), str(message.message_id), reply.asks_instruction, str(user.id)
        )
        await self.services.edit_prompts.remember(prompt)

    async def on_reply(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        message = update.effective_message
        if message is None or message.text is None or message.reply_to_message is None:
            return
        async with handling(self.services.inbox, message):
            await self._answered(message, message.reply_to_message, context.bot)

    async def _answered(self, message: Message, prompt_message: Message, bot: Any) -> None:
        chat, user = message.chat, message.from_user
        inbound = self.inbound
        if user is None or not inbound.allowed(chat, user) or await inbound.on_behalf_of_chat(message):
            return
        store = self.services.edit_prompts
        prompt = await store.recall(PLATFORM, str(chat.id), str(prompt_message.message_id)) if store else None
        if prompt is None:  # a reply to some other message of the bot's
            return
        invocation = await inbound.invocation(chat, user, message.message_id, bot)
        if prompt.user_id != str(user.id):
            note = Reply.error(t(await language_for(self.services, invocation), "edit_prompt.not_yours"))
            await inbound.outbound.send_text(chat.id, note, message.message_id)
            return
        reply = await dispatch(self.services, invocation, edit_input(prompt.button_id, message.text or ""))
        queued = reply.job_id is not None and reply.tone is not Tone.ERROR
        await inbound.answer(chat.id, reply, message.message_id, queued)
