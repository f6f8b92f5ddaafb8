"""Telegram side of the Outbound port: the job's status message, results as photos or albums, flood control.

The outbound owns a job's status message from its first post: the engine publishes the queued status when
the job is stored, and every later status and the result go through the same per-job stream, so no status
message is ever posted after the result.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from telegram import Bot, InputMediaPhoto, Message

from adapters.telegram.calls import PROGRESS_ATTEMPTS, Refused, TelegramCalls
from adapters.telegram.direct_status import DirectStatusMessages
from adapters.telegram.pacing import GROUP_WINDOW, ChatPacer
from adapters.telegram.render import (
    MAX_CAPTION,
    MAX_TEXT,
    chat_is_group,
    cut,
    keyboard,
)
from adapters.telegram.results import Record, ResultSender
from bot.config_telegram import TelegramConfig
from bot.i18n import t
from bot.lifecycle import uncancelled
from bot.models import Job
from bot.ports import ChatRecords, JobStore, Undeliverable
from bot.privacy import DirectClosed, hides
from bot.private_status import DM_CLOSED
from bot.replies import Reply

log = logging.getLogger(__name__)

T = TypeVar("T")
STATUS = "telegram_status"  # "chat_id:message_id" of the job's status message
STATUS_MEDIA = "telegram_status_media"  # "1" once the status message shows a preview photo
RESULTS = "telegram_results"  # "chat_id:id,id,..." of the result messages (for Delete)
RESULT_PARTS = "telegram_result_parts"  # how many parts of the result (photo, album, keyboard...) were accepted
ALL_PARTS = "999"
START_SHOW = "show_"  # /start show_<job>: the deep link that fetches a private result held for the user
PLATFORM = "telegram"
SENDS_FLUSH_SECONDS = 1.0  # a crash forgets at most this much of the recent sends the pacer restarts from


def parse_ref(value: str | None) -> tuple[int, list[int]] | None:
    if not value or ":" not in value:
        return None
    chat, _, ids = value.partition(":")
    return int(chat), [int(part) for part in ids.split(",") if part]


class TelegramOutbound:
    """Shows job updates in Telegram chats. Never raises for platform errors."""

    platform = PLATFORM
    owns_status = True

    def __init__(self, bot: Bot, config: TelegramConfig) -> None:
        self.bot = bot
        self.config = config
        self.store: JobStore | None = None
        self._status: dict[str, tuple[int, int]] = {}
        self._media: set[str] = set()
        self.pacer = ChatPacer(scale=config.flood_time_scale, on_sent=self._note_sent)
        self.calls = TelegramCalls(self.pacer)
        self.results = ResultSender(bot, config, self.calls, self.send_text)
        self._unsaved_sends: list[tuple[str, float, int]] = []
        self._saving: asyncio.Task[None] | None = None
        self._flush_now = asyncio.Event()
        self.direct = DirectStatusMessages(self)  # private jobs' status in their owners' private chats

    @property
    def retry_after_count(self) -> int:
        return self.calls.retry_after_count

    @property
    def on_rate_limited(self) -> Callable[[], None] | None:
        return self.calls.on_rate_limited

    @on_rate_limited.setter
    def on_rate_limited(self, hook: Callable[[], None] | None) -> None:
        self.calls.on_rate_limited = hook

    def min_interval(self, job: Job) -> float:
        if chat_is_group(int(job.destination.channel_id)):
            return self.config.group_progress_interval_seconds or 0.0
        return self.config.private_progress_interval_seconds or 0.0

    async def call(
        self, chat_id: int, make: Callable[[], Awaitable[T]], attempts: int = PROGRESS_ATTEMPTS, **kwargs: Any
    ) -> tuple[bool, T | None]:
        """A call that does not depend on the chat id (answering a button): see `TelegramCalls.call`."""
        return await self.calls.call(chat_id, lambda _chat: make(), attempts, **kwargs)

    # ---- sends remembered across restarts (the pacer starts from them) -------------------------

    def _note_sent(self, chat_id: int, count: int) -> None:
        if not isinstance(self.store, ChatRecords):
            return
        self._unsaved_sends.append((str(chat_id), time.time(), count))
        if self._saving is None or self._saving.done():
            self._saving = asyncio.get_running_loop().create_task(self._save_sends(), name="telegram-sends")

    async def _save_sends(self) -> None:
        """One write per SENDS_FLUSH_SECONDS at most: result records, which narrow the duplicate window, come first."""
        try:
            async with asyncio.timeout(SENDS_FLUSH_SECONDS):
                await self._flush_now.wait()
        except TimeoutError:
            pass
        while self._unsaved_sends and isinstance(self.store, ChatRecords):
            batch, self._unsaved_sends = self._unsaved_sends, []
            try:
                await self.store.record_sends(PLATFORM, batch)
            except Exception:
                log.exception("could not record %d sends", len(batch))

    async def aclose(self) -> None:
        """Write the sends not yet recorded (the next start paces itself from them)."""
        self._flush_now.set()
        if self._saving is not None:
            await asyncio.wait([self._saving])

    async def seed_pacer(self) -> int:
        """Count what the previous run sent in the last minute against the flood windows; returns how many."""
        if not isinstance(self.store, ChatRecords):
            return 0
        now = time.time()
        try:
            rows = await self.store.recent_sends(PLATFORM, now - GROUP_WINDOW * self.pacer.scale)
        except Exception:  # a missing record only costs a careful first minute, never the start
            log.exception("could not read the recent sends; pacing from an empty window")
            return 0
        by_chat: dict[int, list[float]] = {}
        for chat, at, count in rows:
            by_chat.setdefault(int(chat), []).extend([max(0.0, now - at)] * count)
        for chat_id, ages in by_chat.items():
            self.pacer.seed(chat_id, ages)
        return sum(len(ages) for ages in by_chat.values())

    # ---- the status message ------------------------------------------------------------------

    def _status_ref(self, job: Job) -> tuple[int, int] | None:
        if job.id in self._status:
            return self._status[job.id]
        stored = parse_ref(job.messages.get(STATUS))
        if stored is None or not stored[1]:
            return None
        if job.messages.get(STATUS_MEDIA):
            self._media.add(job.id)
        self._status[job.id] = (stored[0], stored[1][0])
        return self._status[job.id]

    def status_posted(self, job: Job) -> bool:
        """Whether the job's messages name its status message (posted by this process or another one), and for a
        private job also its status in the owner's private chat (or that it refused the bot)."""
        stored = parse_ref(job.messages.get(STATUS))
        posted = job.id in self._status or (stored is not None and bool(stored[1]))
        return posted and (not hides(job) or self.direct.known(job))

    async def _remember_status(self, job: Job, chat_id: int, message: Message | None) -> None:
        if message is None:
            return
        self._status[job.id] = (chat_id, message.message_id)
        job.messages[STATUS] = f"{chat_id}:{message.message_id}"
        if self.store is not None:
            await self.store.set_message(job.id, STATUS, job.messages[STATUS])

    async def _remember_media(self, job: Job) -> None:
        """The status message shows a photo now: later edits change its caption, not its text."""
        if job.id not in self._media:
            self._media.add(job.id)
            job.messages[STATUS_MEDIA] = "1"
            if self.store is not None:
                await self.store.set_message(job.id, STATUS_MEDIA, "1")

    async def update_status(self, job: Job, reply: Reply) -> bool:
        ref = self._status_ref(job)
        if ref is not None and self.calls.chat(ref[0]) != ref[0]:  # its chat became a supergroup: post anew
            self._status.pop(job.id, None)
            self._media.discard(job.id)
            ref = None
        if ref is None:  # the first post: the job's status message from now on, and the command's acknowledgement
            markup = keyboard(reply.buttons)
            reply_to = _source(job)
            ok, _ = await uncancelled(  # it goes out even when the job finished meanwhile (the result replaces it)
                self.calls.call(
                    int(job.destination.channel_id),
                    lambda chat: self.bot.send_message(
                        chat,
                        cut(reply.text, MAX_TEXT),
                        reply_markup=markup,
                        reply_to_message_id=reply_to,
                        allow_sending_without_reply=True,
                    ),
                    self.config.max_send_attempts,
                    messages=1,
                    then=lambda chat, message: self._remember_status(job, chat, message),
                )
            )
            return ok
        return await self._edit_status(job, ref, reply)  # False: skipped in a busy chat, the notifier retries

    async def _edit_status(
        self, job: Job, ref: tuple[int, int], reply: Reply, attempts: int = PROGRESS_ATTEMPTS
    ) -> bool:
        chat_id, message_id = ref
        markup = keyboard(reply.buttons)
        low = attempts == PROGRESS_ATTEMPTS
        if reply.images:
            media = InputMediaPhoto(
                reply.images[0].read(), filename=reply.images[0].filename, caption=cut(reply.text, MAX_CAPTION)
            )
            ok, _ = await uncancelled(  # a preview shown is recorded even when the job finishes meanwhile
                self.calls.call(
                    chat_id,
                    lambda chat: self.bot.edit_message_media(
                        media, chat_id=chat, message_id=message_id, reply_markup=markup
                    ),
                    attempts,
                    messages=1,
                    low_priority=low,
                    moves=False,
                    upload=True,
                    then=lambda _chat, _message: self._remember_media(job),
                )
            )
            return ok
        if job.id in self._media:
            caption = cut(reply.text, MAX_CAPTION)
            edit: Callable[[int], Awaitable[Any]] = lambda chat: self.bot.edit_message_caption(  # noqa: E731
                chat_id=chat, message_id=message_id, caption=caption, reply_markup=markup
            )
        else:
            text = cut(reply.text, MAX_TEXT)
            edit = lambda chat: self.bot.edit_message_text(  # noqa: E731
                text, chat_id=chat, message_id=message_id, reply_markup=markup
            )
        ok, _ = await self.calls.call(chat_id, edit, attempts, messages=1, low_priority=low, moves=False)
        return ok

    # ---- results -------------------------------------------------------------------------------

    async def deliver(self, job: Job, reply: Reply) -> bool:
        """Show the outcome. A result Telegram refuses for good is explained to the user and `Undeliverable`."""
        chat_id = int(job.destination.channel_id)
        try:
            return await self._deliver(job, reply, chat_id)
        except Refused as exc:
            if not exc.gone:
                await self._report(job, exc.message)
            raise Undeliverable(exc.message) from exc
        except (Undeliverable, asyncio.CancelledError):
            raise
        except Exception as exc:  # a fault of ours: tell the user rather than retry it for an hour
            log.exception("delivering job %s failed", job.id)
            await self._report(job, type(exc).__name__)
            raise Undeliverable(repr(exc)) from exc

    async def _deliver(self, job: Job, reply: Reply, chat_id: int) -> bool:
        reply_to = _source(job)
        status = self._status_ref(job)
        if not reply.images:
            if status is not None and await self._edit_status(
                job, status, Reply(text=reply.text), self.config.max_send_attempts
            ):
                return True
            ok, _ = await self.send_text(chat_id, reply, reply_to)
            return ok
        ids = await self.send_images(
            chat_id,
            reply,
            reply_to,
            lambda sent, parts: self._record_results(job, sent, parts),
            strict=True,
            done=await self._recorded(job),
        )
        if ids is None:
            return False
        if status is not None and self.calls.chat(status[0]) == status[0]:
            await self.calls.call(status[0], lambda chat: self.bot.delete_message(chat, status[1]), moves=False)
        self._status.pop(job.id, None)
        self._media.discard(job.id)
        return True

    async def deliver_direct(self, job: Job, reply: Reply, *, again: bool = False) -> bool:
        """A private result in the user's private chat (its id is the user's id); see `bot.privacy.DirectOutbound`.

        Telegram answers 403 while the user has not started the bot (or has blocked it): `DirectClosed`, with a
        t.me link whose Start sends `/start show_<job>`.
        """
        if not again and await self.direct.recorded(job) == DM_CLOSED:  # refused already: not one more try
            raise DirectClosed(self.closed_instructions(job))
        chat_id = int(job.destination.user_id)
        record = None if again else (lambda sent, parts: self._record_results(job, sent, parts, chat_id))
        try:
            ids = await self.send_images(
                chat_id, reply, None, record, strict=True, done=([], 0) if again else await self._recorded(job)
            )
        except Refused as exc:
            if exc.gone:
                raise DirectClosed(self.closed_instructions(job)) from exc
            raise Undeliverable(exc.message) from exc
        if ids is not None and not again:
            await self.direct.replaced(job)
        return ids is not None

    def closed_instructions(self, job: Job) -> str:
        link = f"https://t.me/{self.bot.username}?start={START_SHOW}{job.id}"
        return t(job.destination.locale, "private.closed_telegram", job=job.id, link=link)

    async def _report(self, job: Job, reason: str) -> None:
        text = t(job.destination.locale, "delivery.failed", job=job.id, reason=reason[:200])
        await self.send_text(int(job.destination.channel_id), Reply(text=text), _source(job))

    async def _record_results(self, job: Job, ids: list[int], parts: int, chat: int | None = None) -> None:
        """Written right after each part of a result is accepted: a retry or a restart sends only what is left."""
        chat_id = self.calls.chat(int(job.destination.channel_id) if chat is None else chat)
        values = {RESULTS: f"{chat_id}:{','.join(map(str, ids))}", RESULT_PARTS: str(parts)}
        job.messages.update(values)
        if isinstance(self.store, ChatRecords):
            await self.store.set_messages(job.id, values)
        elif self.store is not None:
            for key, value in values.items():
                await self.store.set_message(job.id, key, value)

    async def _recorded(self, job: Job) -> tuple[list[int], int]:
        """(ids, parts) of the result already accepted by Telegram (the process died before marking it delivered)."""
        messages = job.messages
        if RESULTS not in messages and self.store is not None:
            stored = await self.store.get(job.id)
            messages = stored.messages if stored is not None else messages
        ref = parse_ref(messages.get(RESULTS))
        if ref is None:
            return [], 0
        return ref[1], int(messages.get(RESULT_PARTS, ALL_PARTS))  # older records: the whole result was shown

    async def send_text(
        self, chat_id: int, reply: Reply, reply_to: int | None, *, strict: bool = False
    ) -> tuple[bool, Message | None]:
        markup = keyboard(reply.buttons)
        return await self.calls.call(
            chat_id,
            lambda chat: self.bot.send_message(
                chat,
                cut(reply.text, MAX_TEXT),
                reply_markup=markup,
                reply_to_message_id=reply_to,
                allow_sending_without_reply=True,
            ),
            self.config.max_send_attempts,
            messages=1,
            strict=strict,
        )

    async def send_images(
        self,
        chat_id: int,
        reply: Reply,
        reply_to: int | None,
        record: Record | None = None,
        *,
        strict: bool = False,
        done: tuple[list[int], int] = ([], 0),
    ) -> list[int] | None:
        """The images of a reply (see `ResultSender.send_images`); None on failure."""
        return await self.results.send_images(chat_id, reply, reply_to, record, strict=strict, done=done)

    async def delete_results(self, job_id: str, chat_id: int, message_id: int) -> None:
        """Delete: the job's own messages in this chat, and the pressed message only if it is one of them.

        A button carries a job id anyone can forge; what may be deleted is what this job recorded.
        """
        job = await self.store.get(job_id) if self.store is not None else None
        stored = parse_ref(job.messages.get(RESULTS)) if job is not None else None
        if stored is None or self.calls.chat(stored[0]) != self.calls.chat(chat_id):
            log.info("delete of job %s pressed on message %s: none of its messages are here", job_id, message_id)
            return
        for target in sorted(set(stored[1])):
            await self.calls.call(
                stored[0],
                lambda chat, target=target: self.bot.delete_message(chat, target),  # type: ignore[misc]
                moves=False,
            )


def _source(job: Job) -> int | None:
    source = job.destination.source_message_id
    return int(source) if source and source.isdigit() else None
