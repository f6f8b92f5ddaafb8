"""/edit on Telegram: the images of a photo, an image file or an album, checked before anything is downloaded.

An album (media group) reaches a bot as one message per item, each its own update sharing a `media_group_id`,
with the album's caption on the first item only. `Albums` keeps the items seen lately per chat, so a `/edit`
caption waits for the items that follow it, and a `/edit` reply to one item finds the others. A privacy-mode
bot in a group sees only the messages meant for it: there it gets the captioned item alone, and a reply to an
album finds only the item replied to (README, /edit).
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from typing import Any

from telegram import Message
from telegram.error import TelegramError
from telegram.ext import filters

from bot.i18n import t
from bot.presets import MAX_REFERENCES
from bot.replies import Reply

MAX_ALBUM = 10  # Telegram's most items in one media group


class InAlbum(filters.MessageFilter):
    """Messages that are an item of an album."""

    def filter(self, message: Message) -> bool:
        return message.media_group_id is not None


class Albums:
    """The albums seen lately: (chat id, media_group_id) -> their items by message id, the oldest forgotten first."""

    def __init__(self, quiet_seconds: float, keep: int = 512) -> None:
        self.quiet_seconds = quiet_seconds
        self.keep = keep
        self._items: OrderedDict[tuple[int, str], dict[int, Message]] = OrderedDict()
        self._arrived: dict[tuple[int, str], asyncio.Event] = {}

    def add(self, message: Message) -> None:
        """Remember an album item (its update arrived)."""
        if message.media_group_id is None:
            return
        key = (message.chat.id, message.media_group_id)
        self._items.setdefault(key, {})[message.message_id] = message
        self._items.move_to_end(key)
        while len(self._items) > self.keep:
            old, _ = self._items.popitem(last=False)
            self._arrived.pop(old, None)
        if (event := self._arrived.get(key)) is not None:
            event.set()

    def members(self, message: Message) -> list[Message]:
        """The items of this message's album seen so far, in order; the message alone when it is in none."""
        if message.media_group_id is None:
            return [message]
        self.add(message)
        items = self._items.get((message.chat.id, message.media_group_id), {message.message_id: message})
        return [items[number] for number in sorted(items)]

    async def complete(self, message: Message) -> list[Message]:
        """The album of a message that just arrived: waits while more of its items keep arriving."""
        if message.media_group_id is None:
            return [message]
        self.add(message)
        key = (message.chat.id, message.media_group_id)
        event = self._arrived.setdefault(key, asyncio.Event())
        for _ in range(MAX_ALBUM):  # each round ends when no item came for quiet_seconds
            event.clear()
            try:
                async with asyncio.timeout(self.quiet_seconds):
                    await event.wait()
            except TimeoutError:
                break
        return self.members(message)


def image_of(message: Message) -> Any | tuple[str, str] | None:
    """The largest photo size or the image document of a message; (name, type) of what is not an image; None."""
    if message.photo:
        return message.photo[-1]
    if message.document and (message.document.mime_type or "").startswith("image/"):
        return message.document
    from adapters.telegram.inbound import not_an_image  # inbound imports this module

    return not_an_image(message)


def refuse_before_download(members: list[Message], lang: str, max_bytes: int) -> Reply | list[Any]:
    """The files to download, or why not: too many images, an item that is not an image, one over the limit."""
    if len(members) > MAX_REFERENCES:
        count = len(members)
        return Reply.error(
            t(lang, "edit.telegram_too_many", count=count, most=MAX_REFERENCES, first_extra=MAX_REFERENCES + 1)
        )
    files = []
    for number, member in enumerate(members, start=1):
        item = image_of(member)
        if item is None:  # a text message: nothing to edit (the core says what /edit needs)
            continue
        if isinstance(item, tuple) and len(members) == 1:
            return Reply.error(t(lang, "telegram.not_an_image", name=item[0], mime=item[1]))
        if isinstance(item, tuple):
            return Reply.error(t(lang, "edit.telegram_not_image", number=number, name=item[0], mime=item[1]))
        if item.file_size and item.file_size > max_bytes:
            return Reply.error(t(lang, "error.image_too_large", size=item.file_size / 1e6, limit=max_bytes / 1e6))
        files.append(item)
    return files


async def download(files: list[Any], bot: Any, lang: str) -> Reply | list[bytes]:
    """The files' bytes, in order (getFile, then the file itself)."""
    images = []
    for item in files:
        try:
            file = await bot.get_file(item.file_id)
            images.append(bytes(await file.download_as_bytearray()))
        except TelegramError as exc:
            return Reply.error(t(lang, "platform.telegram_download_failed", reason=exc.message))
    return images
