"""Chats that change under the bot: removed from a group or blocked by a user (that chat's jobs are cancelled
and refunded, nothing more is sent there), added back, or upgraded from group to supergroup (a new chat id)."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from telegram import Update
from telegram.ext import Application, ChatMemberHandler, ContextTypes, MessageHandler, filters

from adapters.telegram.outbound import PLATFORM, TelegramOutbound
from bot.chats import chat_back, chat_gone, chat_moved
from commands.context import Services

log = logging.getLogger(__name__)

GONE = {"left", "kicked"}


class ChatWatch:
    """Keeps the job queue's view of Telegram chats in step with what Telegram says about them."""

    def __init__(self, services: Services, outbound: TelegramOutbound) -> None:
        self.services = services
        self.jobs = services.jobs
        self.outbound = outbound
        self._tasks: set[asyncio.Task[int]] = set()
        outbound.calls.on_chat_gone = self.gone
        outbound.calls.on_chat_moved = self.moved

    def install(self, app: Application[Any, Any, Any, Any, Any, Any]) -> None:
        app.add_handler(ChatMemberHandler(self.on_my_member, ChatMemberHandler.MY_CHAT_MEMBER, block=False))
        app.add_handler(MessageHandler(filters.StatusUpdate.MIGRATE, self.on_migrate, block=False))

    async def gone(self, chat_id: int) -> None:
        """403 on a send, or a my_chat_member update: cancel that chat's jobs (in a task of its own, because
        the caller may be one of those jobs' own status updates)."""
        if not self.jobs.mark_gone(PLATFORM, str(chat_id)):
            return  # already known: its jobs are being cancelled
        task = asyncio.get_running_loop().create_task(chat_gone(self.jobs, PLATFORM, str(chat_id)))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def moved(self, old: int, new: int) -> None:
        await chat_moved(self.jobs, PLATFORM, str(old), str(new), self.services.accounts)

    async def on_my_member(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        change = update.my_chat_member
        if change is None:
            return
        status = change.new_chat_member.status
        log.info("telegram chat %s: the bot is now %s", change.chat.id, status)
        if status in GONE:
            await self.gone(change.chat.id)
        else:
            chat_back(self.jobs, PLATFORM, str(change.chat.id))

    async def on_migrate(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        message = update.effective_message
        if message is not None and message.migrate_to_chat_id:
            old, new = message.chat.id, message.migrate_to_chat_id
            if self.outbound.calls.moved.get(old) != new:
                self.outbound.calls.moved[old] = new
                await self.moved(old, new)
