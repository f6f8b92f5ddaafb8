"""Telegram side of the Outbound port: status message edits, results as photos or albums, flood control honoured."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any, TypeVar

from telegram import Bot, InputMediaPhoto, Message
from telegram.constants import ChatAction
from telegram.error import BadRequest, Forbidden, RetryAfter, TelegramError

from adapters.telegram.pacing import ChatPacer
from adapters.telegram.render import (
    MAX_CAPTION,
    MAX_DOCUMENT_BYTES,
    MAX_TEXT,
    chat_is_group,
    cut,
    fit_photo,
    fits_photo_rules,
    keyboard,
)
from bot.config_telegram import TelegramConfig
from bot.models import Job
from bot.ports import JobStore
from bot.replies import Reply

log = logging.getLogger(__name__)

T = TypeVar("T")
STATUS = "telegram_status"  # "chat_id:message_id" of the job's status message
STATUS_MEDIA = "telegram_status_media"  # "1" once the status message shows a preview photo
RESULTS = "telegram_results"  # "chat_id:id,id,..." of the result messages (for Delete)
PROGRESS_ATTEMPTS = 3
CLAIM_TIMEOUT = 30.0


def retry_seconds(exc: RetryAfter) -> float:
    value = exc.retry_after
    return value.total_seconds() if isinstance(value, timedelta) else float(value)


def parse_ref(value: str | None) -> tuple[int, list[int]] | None:
    if not value or ":" not in value:
        return None
    chat, _, ids = value.partition(":")
    return int(chat), [int(part) for part in ids.split(",") if part]


class TelegramOutbound:
    """Shows job updates in Telegram chats. Never raises for platform errors."""

    platform = "telegram"

    def __init__(self, bot: Bot, config: TelegramConfig) -> None:
        self.bot = bot
        self.config = config
        self.store: JobStore | None = None
        self.retry_after_count = 0
        self._status: dict[str, tuple[int, int]] = {}
        self._media: set[str] = set()
        self._claims: dict[str, asyncio.Event] = {}
        self._blocked_until: dict[int, float] = {}
        self.pacer = ChatPacer(scale=config.flood_time_scale)
        self.on_rate_limited: Callable[[], None] | None = None  # metrics

    def min_interval(self, job: Job) -> float:
        if chat_is_group(int(job.destination.channel_id)):
            return self.config.group_progress_interval_seconds or 0.0
        return self.config.private_progress_interval_seconds or 0.0

    # ---- the status message ------------------------------------------------------------------

    def claim(self, job_id: str) -> None:
        """A queued message for this job is being sent: status updates wait for its id."""
        self._claims.setdefault(job_id, asyncio.Event())

    async def register_status(self, job_id: str, chat_id: int, message_id: int | None) -> None:
        """Remember the job's status message (None: sending it failed; updates will send a new one)."""
        if message_id is not None:
            self._status[job_id] = (chat_id, message_id)
            if self.store is not None:
                await self.store.set_message(job_id, STATUS, f"{chat_id}:{message_id}")
        event = self._claims.pop(job_id, None)
        if event is not None:
            event.set()

    async def _status_ref(self, job: Job) -> tuple[int, int] | None:
        event = self._claims.get(job.id)
        if event is not None:
            try:
                async with asyncio.timeout(CLAIM_TIMEOUT):
                    await event.wait()
            except TimeoutError:
                log.warning("job %s: queued message never registered", job.id)
        if job.id in self._status:
            return self._status[job.id]
        stored = parse_ref(job.messages.get(STATUS))
        if stored is None or not stored[1]:
            return None
        if job.messages.get(STATUS_MEDIA):
            self._media.add(job.id)
        return stored[0], stored[1][0]

    async def update_status(self, job: Job, reply: Reply) -> bool:
        ref = await self._status_ref(job)
        chat_id = int(job.destination.channel_id)
        markup = keyboard(reply.buttons)
        if ref is None:
            ok, message = await self.call(
                chat_id,
                lambda: self.bot.send_message(chat_id, cut(reply.text, MAX_TEXT), reply_markup=markup),
                messages=1,
            )
            if ok and message is not None:
                await self.register_status(job.id, chat_id, message.message_id)
            return ok
        return await self._edit_status(job, ref, reply)  # False: skipped in a busy chat, the notifier retries

    async def _edit_status(
        self, job: Job, ref: tuple[int, int], reply: Reply, attempts: int = PROGRESS_ATTEMPTS
    ) -> bool:
        chat_id, message_id = ref
        markup = keyboard(reply.buttons)
        if reply.images:
            media = InputMediaPhoto(
                reply.images[0].read(), filename=reply.images[0].filename, caption=cut(reply.text, MAX_CAPTION)
            )
            ok, _ = await self.call(
                chat_id,
                lambda: self.bot.edit_message_media(media, chat_id=chat_id, message_id=message_id, reply_markup=markup),
                attempts,
                messages=1,
                low_priority=attempts == PROGRESS_ATTEMPTS,
            )
            if ok and job.id not in self._media:
                self._media.add(job.id)
                if self.store is not None:
                    await self.store.set_message(job.id, STATUS_MEDIA, "1")
            return ok
        if job.id in self._media:
            caption = cut(reply.text, MAX_CAPTION)
            edit: Callable[[], Awaitable[Any]] = lambda: self.bot.edit_message_caption(  # noqa: E731
                chat_id=chat_id, message_id=message_id, caption=caption, reply_markup=markup
            )
        else:
            text = cut(reply.text, MAX_TEXT)
            edit = lambda: self.bot.edit_message_text(  # noqa: E731
                text, chat_id=chat_id, message_id=message_id, reply_markup=markup
            )
        ok, _ = await self.call(chat_id, edit, attempts, messages=1, low_priority=attempts == PROGRESS_ATTEMPTS)
        return ok

    # ---- calls with flood control --------------------------------------------------------------

    async def call(
        self,
        chat_id: int,
        make: Callable[[], Awaitable[T]],
        attempts: int = PROGRESS_ATTEMPTS,
        *,
        messages: int = 0,
        low_priority: bool = False,
    ) -> tuple[bool, T | None]:
        """Run one Bot API call; wait out RetryAfter; (True, None) when Telegram says "not modified".

        `messages` is how many messages the call counts against the chat's flood limits (sends and edits);
        a low-priority call (a progress edit) is skipped rather than delayed when the chat is busy.
        """
        for attempt in range(1, attempts + 1):
            wait = self._blocked_until.get(chat_id, 0.0) - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            if messages and not await self.pacer.acquire(chat_id, messages, low_priority):
                return False, None
            try:
                return True, await make()
            except RetryAfter as exc:
                self.retry_after_count += 1
                if self.on_rate_limited is not None:
                    self.on_rate_limited()
                seconds = retry_seconds(exc)
                until = time.monotonic() + seconds
                self._blocked_until[chat_id] = max(self._blocked_until.get(chat_id, 0.0), until)
                log.info("chat %s: flood control, retry in %.2f s (attempt %d)", chat_id, seconds, attempt)
            except BadRequest as exc:
                if "not modified" in exc.message.lower():
                    return True, None
                log.warning("chat %s: Telegram refused: %s", chat_id, exc.message)
                return False, None
            except Forbidden as exc:
                log.warning("chat %s: bot cannot write here: %s", chat_id, exc.message)
                return False, None
            except TelegramError as exc:
                log.warning("chat %s: Telegram error (attempt %d): %s", chat_id, attempt, exc)
                await asyncio.sleep(min(2.0**attempt, 10.0) * 0.1)
        return False, None

    # ---- results -------------------------------------------------------------------------------

    async def deliver(self, job: Job, reply: Reply) -> bool:
        chat_id = int(job.destination.channel_id)
        source = job.destination.source_message_id
        reply_to = int(source) if source and source.isdigit() else None
        status = await self._status_ref(job)
        if not reply.images:
            if status is not None and await self._edit_status(
                job, status, Reply(text=reply.text), self.config.max_send_attempts
            ):
                return True
            ok, _ = await self.send_text(chat_id, reply, reply_to)
            return ok
        if await self._already_shown(job):
            ids: list[int] | None = []
        else:
            ids = await self.send_images(
                chat_id, reply, reply_to, lambda sent: self._record_results(job, chat_id, sent)
            )
        if ids is None:
            return False
        if status is not None:
            await self.call(chat_id, lambda: self.bot.delete_message(chat_id, status[1]))
        self._status.pop(job.id, None)
        self._media.discard(job.id)
        return True

    async def _record_results(self, job: Job, chat_id: int, ids: list[int]) -> None:
        """Written right after each part of a result is accepted: a restart then never sends it again."""
        if self.store is not None:
            await self.store.set_message(job.id, RESULTS, f"{chat_id}:{','.join(map(str, ids))}")

    async def _already_shown(self, job: Job) -> bool:
        """The result's photos were accepted before (the process died before it was marked delivered)."""
        if RESULTS in job.messages:
            return True
        if self.store is None:
            return False
        stored = await self.store.get(job.id)
        return stored is not None and RESULTS in stored.messages

    async def send_text(self, chat_id: int, reply: Reply, reply_to: int | None) -> tuple[bool, Message | None]:
        markup = keyboard(reply.buttons)
        return await self.call(
            chat_id,
            lambda: self.bot.send_message(
                chat_id,
                cut(reply.text, MAX_TEXT),
                reply_markup=markup,
                reply_to_message_id=reply_to,
                allow_sending_without_reply=True,
            ),
            self.config.max_send_attempts,
            messages=1,
        )

    async def send_images(
        self,
        chat_id: int,
        reply: Reply,
        reply_to: int | None,
        record: Callable[[list[int]], Awaitable[None]] | None = None,
    ) -> list[int] | None:
        """sendPhoto for one image, albums of 2-10 then the keyboard; originals as documents. None on failure.

        `record` is called with the ids sent so far after each accepted part, before anything else happens.
        """
        await self.call(chat_id, lambda: self.bot.send_chat_action(chat_id, ChatAction.UPLOAD_PHOTO), 1)
        prepared = [await asyncio.to_thread(_prepare, image.read()) for image in reply.images]
        names = [image.filename for image in reply.images]
        attempts = self.config.max_send_attempts
        markup = keyboard(reply.buttons)
        ids: list[int] = []
        if len(prepared) == 1:
            photo = prepared[0][0]
            ok, message = await self.call(
                chat_id,
                lambda: self.bot.send_photo(
                    chat_id,
                    photo,
                    caption=cut(reply.text, MAX_CAPTION),
                    reply_markup=markup,
                    filename=names[0],
                    reply_to_message_id=reply_to,
                    allow_sending_without_reply=True,
                ),
                attempts,
                messages=1,
            )
            if not ok or message is None:
                return None
            ids.append(message.message_id)
            if record is not None:
                await record(ids)
        else:
            for start in range(0, len(prepared), 10):
                chunk = prepared[start : start + 10]
                sent = await self._album(chat_id, [p[0] for p in chunk], names[start : start + 10], reply_to)
                if sent is None:
                    return None
                ids.extend(sent)
                if record is not None:
                    await record(ids)
            ok, message = await self.send_text(chat_id, reply, None)
            if not ok or message is None:
                return None
            ids.append(message.message_id)
            if record is not None:
                await record(ids)
        for (_, original), name in zip(prepared, names, strict=True):
            if original is not None and len(original) <= MAX_DOCUMENT_BYTES:
                document_id = await self._send_original(chat_id, original, name)
                if document_id is not None:
                    ids.append(document_id)
        return ids

    async def _send_original(self, chat_id: int, original: bytes, name: str) -> int | None:
        """The untouched image as a document, when the photo had to be changed to fit the rules."""
        ok, document = await self.call(
            chat_id,
            lambda: self.bot.send_document(chat_id, original, filename=name, caption=f"Full-size original: {name}"),
            self.config.max_send_attempts,
            messages=1,
        )
        return document.message_id if ok and document is not None else None

    async def _album(
        self, chat_id: int, photos: list[bytes], names: list[str], reply_to: int | None
    ) -> list[int] | None:
        if len(photos) == 1:
            ok, message = await self.call(
                chat_id,
                lambda: self.bot.send_photo(chat_id, photos[0], filename=names[0]),
                self.config.max_send_attempts,
                messages=1,
            )
            return [message.message_id] if ok and message is not None else None
        media = [InputMediaPhoto(photo, filename=name) for photo, name in zip(photos, names, strict=True)]
        ok, messages = await self.call(
            chat_id,
            lambda: self.bot.send_media_group(
                chat_id, media, reply_to_message_id=reply_to, allow_sending_without_reply=True
            ),
            self.config.max_send_attempts,
            messages=len(media),
        )
        if not ok or messages is None:
            return None
        return [message.message_id for message in messages]

    async def delete_results(self, job_id: str, chat_id: int, message_id: int) -> None:
        """Delete: the message the button was on and every result message of the job."""
        ids = {message_id}
        job = await self.store.get(job_id) if self.store is not None else None
        stored = parse_ref(job.messages.get(RESULTS)) if job is not None else None
        if stored is not None and stored[0] == chat_id:
            ids.update(stored[1])
        for target in sorted(ids):
            await self.call(chat_id, lambda target=target: self.bot.delete_message(chat_id, target))  # type: ignore[misc]


def _prepare(data: bytes) -> tuple[bytes, bytes | None]:
    """The photo to send and, when it had to be changed to fit the rules, the original to offer as a document."""
    if fits_photo_rules(data):
        return data, None
    return fit_photo(data), data
