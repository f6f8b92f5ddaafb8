"""A private job's status message in its owner's private chat with the bot (chat id = user id): posted with the
queued status, edited with the progress and its preview through the same pacer as every other call, deleted
once the result is there (as in a group). See bot/private_status.py.

A private chat that refuses the bot (never started, or blocked: 403) is recorded on the job at the first try,
so nothing more is tried for it: the result is then held as before.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from telegram import InputMediaPhoto, Message

from adapters.telegram.calls import PROGRESS_ATTEMPTS, Refused
from adapters.telegram.render import MAX_CAPTION, MAX_TEXT, cut, keyboard
from bot.lifecycle import uncancelled
from bot.models import Job
from bot.private_status import DM_CLOSED, DM_REFUSED
from bot.replies import Reply

if TYPE_CHECKING:
    from adapters.telegram.outbound import TelegramOutbound

log = logging.getLogger(__name__)

DM_STATUS = "telegram_dm_status"  # "chat_id:message_id" of the status in the owner's private chat, or "closed"
DM_STATUS_MEDIA = "telegram_dm_status_media"  # "1" once that message shows a preview photo


class DirectStatusMessages:
    """The private-chat status messages of the private jobs this process shows."""

    def __init__(self, outbound: TelegramOutbound) -> None:
        self.outbound = outbound
        self._refs: dict[str, str] = {}
        self._media: set[str] = set()

    async def recorded(self, job: Job) -> str | None:
        """The job's DM status: "chat:message", DM_CLOSED, or None (not posted; read from the store, where another
        process or the previous run may have recorded it)."""
        if job.id in self._refs:
            return self._refs[job.id]
        messages = job.messages
        store = self.outbound.store
        if DM_STATUS not in messages and store is not None:
            stored = await store.get(job.id)
            messages = stored.messages if stored is not None else messages
        value = messages.get(DM_STATUS)
        if value:
            self._refs[job.id] = value
            if messages.get(DM_STATUS_MEDIA):
                self._media.add(job.id)
        return value or None

    def known(self, job: Job) -> bool:
        """Whether the job's DM status was posted (or refused), by this process or one whose record is in `job`."""
        return job.id in self._refs or bool(job.messages.get(DM_STATUS))

    async def _remember(self, job: Job, key: str, value: str) -> None:
        job.messages[key] = value
        if self.outbound.store is not None:
            await self.outbound.store.set_message(job.id, key, value)

    def interval(self, job: Job) -> float:
        return self.outbound.config.private_progress_interval_seconds or 0.0

    async def update(self, job: Job, reply: Reply) -> bool:
        """See `bot.private_status.DirectStatus`."""
        value = await self.recorded(job)
        if value in (DM_CLOSED, DM_REFUSED):
            return True
        if value is None:
            return await self._post(job, reply)
        chat_id, _, message_id = value.partition(":")
        return await self._edit(job, int(chat_id), int(message_id), reply)

    async def _post(self, job: Job, reply: Reply) -> bool:
        """The first status in the private chat (its text: a preview comes with the next edit)."""
        calls, bot = self.outbound.calls, self.outbound.bot
        markup = keyboard(reply.buttons)

        async def posted(chat: int, message: Message) -> None:
            self._refs[job.id] = f"{chat}:{message.message_id}"
            await self._remember(job, DM_STATUS, self._refs[job.id])

        try:
            ok, _ = await uncancelled(  # the message id is recorded even when the job finished meanwhile
                calls.call(
                    int(job.destination.user_id),
                    lambda chat: bot.send_message(chat, cut(reply.text, MAX_TEXT), reply_markup=markup),
                    self.outbound.config.max_send_attempts,
                    messages=1,
                    strict=True,
                    then=posted,
                )
            )
        except Refused as exc:
            if not exc.gone:  # refused for another reason: the result will try once and say why
                self._refs[job.id] = DM_REFUSED
                return True
            log.info("job %s: the owner's private chat refuses the bot (%s)", job.id, exc.message)
            self._refs[job.id] = DM_CLOSED  # never started, or blocked: the result is held, not tried
            await self._remember(job, DM_STATUS, DM_CLOSED)
            return True
        return ok

    async def _edit(self, job: Job, chat_id: int, message_id: int, reply: Reply, final: bool = False) -> bool:
        calls, bot = self.outbound.calls, self.outbound.bot
        attempts = self.outbound.config.max_send_attempts if final else PROGRESS_ATTEMPTS
        markup = keyboard(reply.buttons)
        if reply.images:
            image = reply.images[0]
            media = InputMediaPhoto(image.read(), filename=image.filename, caption=cut(reply.text, MAX_CAPTION))

            async def shown(_chat: int, _message: Any) -> None:
                if job.id not in self._media:
                    self._media.add(job.id)
                    await self._remember(job, DM_STATUS_MEDIA, "1")

            ok, _ = await uncancelled(
                calls.call(
                    chat_id,
                    lambda chat: bot.edit_message_media(
                        media, chat_id=chat, message_id=message_id, reply_markup=markup
                    ),
                    attempts,
                    messages=1,
                    low_priority=not final,
                    moves=False,
                    upload=True,
                    then=shown,
                )
            )
            return ok
        edit: Callable[[int], Awaitable[Any]]
        if job.id in self._media:
            caption = cut(reply.text, MAX_CAPTION)
            edit = lambda chat: bot.edit_message_caption(  # noqa: E731
                chat_id=chat, message_id=message_id, caption=caption, reply_markup=markup
            )
        else:
            text = cut(reply.text, MAX_TEXT)
            edit = lambda chat: bot.edit_message_text(text, chat_id=chat, message_id=message_id, reply_markup=markup)  # noqa: E731
        ok, _ = await calls.call(chat_id, edit, attempts, messages=1, low_priority=not final, moves=False)
        return ok

    async def replaced(self, job: Job) -> None:
        """The result is in the private chat: its status message goes (as in a group)."""
        value = await self.recorded(job)
        self._refs.pop(job.id, None)
        self._media.discard(job.id)
        if value is None or ":" not in value:
            return
        chat_id, _, message_id = value.partition(":")
        await self.outbound.calls.call(
            int(chat_id), lambda chat: self.outbound.bot.delete_message(chat, int(message_id)), moves=False
        )

    async def ended(self, job: Job, reply: Reply) -> None:
        """The job ended without a private result (failed, cancelled): its status says how, without buttons."""
        value = await self.recorded(job)
        if value is not None and ":" in value:
            chat_id, _, message_id = value.partition(":")
            await self._edit(job, int(chat_id), int(message_id), Reply(text=reply.text), final=True)
        self._refs.pop(job.id, None)
        self._media.discard(job.id)
