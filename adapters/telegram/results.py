"""Results as Telegram accepts them: one photo with its keyboard, or albums of 2-10 then the keyboard; the
untouched original as a document when the photo had to be changed to fit Telegram's rules."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from telegram import Bot, InputMediaPhoto, Message
from telegram.constants import ChatAction

from adapters.telegram.calls import TelegramCalls
from adapters.telegram.render import MAX_CAPTION, MAX_DOCUMENT_BYTES, cut, fit_photo, fits_photo_rules, keyboard
from bot.config_telegram import TelegramConfig
from bot.i18n import t
from bot.replies import Reply

SendText = Callable[..., Awaitable[tuple[bool, Message | None]]]
Accepted = Callable[[list[int]], Awaitable[None]]  # ids Telegram accepted for one part
Record = Callable[[list[int], int], Awaitable[None]]  # (all ids so far, parts done)
Part = Callable[[Accepted], Awaitable[bool]]


class ResultSender:
    """Sends result images through the outbound's calls (paced, moved chats followed), recording each part."""

    def __init__(self, bot: Bot, config: TelegramConfig, calls: TelegramCalls, send_text: SendText) -> None:
        self.bot = bot
        self.config = config
        self.calls = calls
        self.send_text = send_text

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
        """sendPhoto for one image, albums of 2-10 then the keyboard; originals as documents. None on failure.

        `record(ids, parts)` is called after each accepted part, before anything else happens; `done` is what an
        earlier attempt recorded (ids, parts), and those parts are not sent again.
        """
        prepared = [await asyncio.to_thread(_prepare, image.read()) for image in reply.images]
        names = [image.filename for image in reply.images]
        parts = self._parts(chat_id, reply, reply_to, strict, prepared, names)
        ids, finished = list(done[0]), done[1]
        if finished < len(parts):
            await self.calls.call(chat_id, lambda chat: self.bot.send_chat_action(chat, ChatAction.UPLOAD_PHOTO), 1)
        for index, part in enumerate(parts[finished:], start=finished + 1):

            async def accepted(sent: list[int], index: int = index) -> None:
                ids.extend(sent)
                if record is not None:
                    await record(list(ids), index)

            if not await part(accepted):
                return None
        return ids

    def _parts(
        self,
        chat_id: int,
        reply: Reply,
        reply_to: int | None,
        strict: bool,
        prepared: list[tuple[bytes, bytes | None]],
        names: list[str],
    ) -> list[Part]:
        """The messages of a result in order, each a step that reports what Telegram accepted."""
        parts: list[Part] = []
        if len(prepared) == 1:
            photo, name = prepared[0][0], names[0]
            parts.append(lambda acc: self._photo(chat_id, photo, name, reply, reply_to, strict, acc))
        else:
            for start in range(0, len(prepared), 10):
                chunk, chunk_names = [p[0] for p in prepared[start : start + 10]], names[start : start + 10]
                parts.append(
                    lambda acc, chunk=chunk, chunk_names=chunk_names: self._album(  # type: ignore[misc]
                        chat_id, chunk, chunk_names, reply_to, strict, acc
                    )
                )
            parts.append(lambda acc: self._keyboard(chat_id, reply, strict, acc))
        for (_, original), name in zip(prepared, names, strict=True):
            if original is not None and len(original) <= MAX_DOCUMENT_BYTES:
                parts.append(
                    lambda acc, original=original, name=name: self._send_original(  # type: ignore[misc]
                        chat_id, original, name, acc
                    )
                )
        return parts

    async def _keyboard(self, chat_id: int, reply: Reply, strict: bool, accepted: Accepted) -> bool:
        """After an album: the caption and the buttons as one message (album photos cannot carry buttons)."""
        ok, message = await self.send_text(chat_id, reply, None, strict=strict)
        if not ok or message is None:
            return False
        await accepted([message.message_id])
        return True

    async def _photo(
        self,
        chat_id: int,
        photo: bytes,
        name: str,
        reply: Reply,
        reply_to: int | None,
        strict: bool,
        accepted: Accepted,
    ) -> bool:
        markup = keyboard(reply.buttons)
        timeout = self.config.upload_timeout_seconds
        ok, message = await self.calls.call(
            chat_id,
            lambda chat: self.bot.send_photo(
                chat,
                photo,
                caption=cut(reply.text, MAX_CAPTION),
                reply_markup=markup,
                filename=name,
                reply_to_message_id=reply_to,
                allow_sending_without_reply=True,
                read_timeout=timeout,
                write_timeout=timeout,
            ),
            self.config.max_send_attempts,
            messages=1,
            strict=strict,
            upload=True,
            then=lambda _chat, sent: accepted([sent.message_id]),
        )
        return ok and message is not None

    async def _send_original(self, chat_id: int, original: bytes, name: str, accepted: Accepted) -> bool:
        """The untouched image as a document, when the photo had to be changed to fit the rules (best effort)."""
        timeout = self.config.upload_timeout_seconds
        await self.calls.call(
            chat_id,
            lambda chat: self.bot.send_document(
                chat,
                original,
                filename=name,
                caption=t("en", "platform.telegram_full_size", name=name),
                read_timeout=timeout,
                write_timeout=timeout,
            ),
            self.config.max_send_attempts,
            messages=1,
            upload=True,
            then=lambda _chat, document: accepted([document.message_id]),
        )
        return True

    async def _album(
        self,
        chat_id: int,
        photos: list[bytes],
        names: list[str],
        reply_to: int | None,
        strict: bool,
        accepted: Accepted,
    ) -> bool:
        """2-10 photos as one album (one left over after a full album goes alone)."""
        media = [InputMediaPhoto(photo, filename=name) for photo, name in zip(photos, names, strict=True)]
        timeout = self.config.upload_timeout_seconds
        ok, messages = await self.calls.call(
            chat_id,
            lambda chat: self.bot.send_media_group(
                chat,
                media,
                reply_to_message_id=reply_to,
                allow_sending_without_reply=True,
                read_timeout=timeout,
                write_timeout=timeout,
            ),
            self.config.max_send_attempts,
            messages=len(media),
            strict=strict,
            upload=True,
            then=lambda _chat, sent: accepted([message.message_id for message in sent]),
        )
        return ok and messages is not None


def _prepare(data: bytes) -> tuple[bytes, bytes | None]:
    """The photo to send and, when it had to be changed to fit the rules, the original to offer as a document."""
    if fits_photo_rules(data):
        return data, None
    return fit_photo(data), data
