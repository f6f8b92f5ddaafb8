"""What the Telegram simulator's users can send beyond plain text and photos, and how getUpdates confirms.

- Messages sent on behalf of a chat carry `sender_chat`, with a stand-in `from` user kept for backward
  compatibility (PTB's `constants.ChatID`): an anonymous group admin posts as the group itself (`from` =
  @GroupAnonymousBot, a bot), a user may post as one of their channels (`from` = @Channel_Bot), and a
  linked channel's posts are forwarded into its discussion group automatically (`from` = the service user
  777000 "Telegram", `is_automatic_forward`, `forward_origin`).
- Documents carry the `mime_type` and `file_name` the sending client declared, whatever the bytes are.
- An album (media group, 2-10 photos, or 2-10 documents: the two do not mix) arrives as one message per item,
  each its own update sharing a `media_group_id`; the album's caption is the first item's. Privacy mode judges
  each message alone, so in a group only the captioned item of a `/command` album reaches a privacy-mode bot.
- getUpdates: an update is confirmed (forgotten by the server) once getUpdates is called with a higher
  offset, and until then every call returns it again, also to a new process after a crash. A newer call
  ends one still held with 409 Conflict (the server serves one poller at a time).
"""

from __future__ import annotations

import secrets
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from simulators.telegram import TelegramSimulator
    from simulators.telegram_state import ChatMessage

ANONYMOUS_ADMIN = 1087968824
SERVICE_USER = 777000
CHANNEL_STAND_IN = 136817688
STAND_IN_USERS: dict[int, dict[str, Any]] = {
    ANONYMOUS_ADMIN: {"id": ANONYMOUS_ADMIN, "is_bot": True, "first_name": "Group", "username": "GroupAnonymousBot"},
    SERVICE_USER: {"id": SERVICE_USER, "is_bot": False, "first_name": "Telegram"},
    CHANNEL_STAND_IN: {"id": CHANNEL_STAND_IN, "is_bot": True, "first_name": "Channel", "username": "Channel_Bot"},
}


CONFLICT = "Conflict: terminated by other getUpdates request; make sure that only one bot instance is running"


@dataclass
class PollLog:
    """getUpdates as the server sees it: which updates it handed out, how often, and which were confirmed."""

    confirmed: set[int] = field(default_factory=set)
    handed_out: Counter[int] = field(default_factory=Counter)
    on_return: Callable[[list[dict[str, Any]]], None] | None = None  # called as a non-empty batch is answered
    polls: int = 0

    def begin(self) -> int:
        """A getUpdates call starts; any earlier one still held is no longer current."""
        self.polls += 1
        return self.polls

    def current(self, poll: int) -> bool:
        return poll == self.polls

    def confirm(self, pending: list[dict[str, Any]], offset: int) -> None:
        """A call with `offset` confirms every update below it."""
        self.confirmed.update(u["update_id"] for u in pending if u["update_id"] < offset)

    def returned(self, updates: list[dict[str, Any]]) -> list[dict[str, Any]]:
        self.handed_out.update(u["update_id"] for u in updates)
        if updates and self.on_return is not None:
            self.on_return(updates)
        return list(updates)

    @property
    def redelivered(self) -> int:
        """Updates handed out more than once (the receiver had not confirmed them, e.g. it crashed)."""
        return sum(1 for count in self.handed_out.values() if count > 1)


def add_channel(sim: TelegramSimulator, channel_id: int, title: str = "") -> None:
    """A channel (negative id), e.g. one linked to a discussion group."""
    sim.chats[channel_id] = {"id": channel_id, "type": "channel", "title": title or f"channel {channel_id}"}


async def send_as_group(sim: TelegramSimulator, chat_id: int, text: str, reply_to: int | None = None) -> ChatMessage:
    """An anonymous administrator writes: the message comes from the group itself."""
    message = sim.new_message(chat_id, False, ANONYMOUS_ADMIN)
    message.text, message.reply_to = text, reply_to
    message.on_behalf = {"sender_chat": dict(sim.chat(chat_id))}
    await sim._deliver_message(message)
    return message


async def send_as_channel(sim: TelegramSimulator, chat_id: int, channel_id: int, text: str) -> ChatMessage:
    """A user writes in a group as one of their channels."""
    message = sim.new_message(chat_id, False, CHANNEL_STAND_IN)
    message.text = text
    message.on_behalf = {"sender_chat": dict(sim.chat(channel_id))}
    await sim._deliver_message(message)
    return message


async def forward_from_channel(sim: TelegramSimulator, group_id: int, channel_id: int, text: str) -> ChatMessage:
    """A post in the linked channel, copied into its discussion group by Telegram."""
    channel = dict(sim.chat(channel_id))
    message = sim.new_message(group_id, False, SERVICE_USER)
    message.text = text
    message.on_behalf = {
        "sender_chat": channel,
        "is_automatic_forward": True,
        "forward_origin": {
            "type": "channel",
            "chat": channel,
            "message_id": message.message_id,
            "date": int(time.time()),
        },
    }
    await sim._deliver_message(message)
    return message


async def send_document(
    sim: TelegramSimulator,
    chat_id: int,
    user_id: int,
    data: bytes,
    *,
    mime_type: str,
    file_name: str,
    caption: str | None = None,
) -> ChatMessage:
    """A user sends a file; the client declares its type and name (Telegram does not check the bytes)."""
    message = sim.new_message(chat_id, False, user_id)
    message.caption = caption
    suffix = file_name.rsplit(".", 1)[-1] if "." in file_name else "bin"
    stored = sim.store_file(data, "documents", suffix)
    stored.mime_type = mime_type
    stored.path = f"documents/{stored.file_id}/{file_name}"
    message.document = stored.file_id
    await sim._deliver_message(message)
    return message


@dataclass(frozen=True)
class AlbumItem:
    """One item of an album a user sends: a photo, or a document with the type and name its client declared."""

    data: bytes
    mime_type: str | None = None  # None: a photo; otherwise a document
    file_name: str = "file"


async def send_album(
    sim: TelegramSimulator,
    chat_id: int,
    user_id: int,
    items: list[AlbumItem],
    caption: str | None = None,
    reply_to: int | None = None,
) -> list[ChatMessage]:
    """A user sends an album: one message (and update) per item, one shared media_group_id, the caption on the first."""
    from simulators.telegram_state import photo_facts

    if not 2 <= len(items) <= 10:
        raise ValueError("an album has 2 to 10 items")
    if len({item.mime_type is None for item in items}) > 1:
        raise ValueError("Telegram clients do not mix photos and files in one album")
    group = str(10**17 + secrets.randbelow(10**17))
    messages = []
    for number, item in enumerate(items):
        message = sim.new_message(chat_id, False, user_id)
        message.media_group_id, message.reply_to = group, reply_to
        message.caption = caption if number == 0 else None
        if item.mime_type is None:
            message.photo = photo_facts(item.data)
            message.photo_file = sim.store_file(item.data).file_id
        else:
            stored = sim.store_file(item.data, "documents", item.file_name.rsplit(".", 1)[-1])
            stored.mime_type, stored.path = item.mime_type, f"documents/{stored.file_id}/{item.file_name}"
            message.document = stored.file_id
        messages.append(message)
    for message in messages:  # the client uploads them all, then the server delivers them one by one
        await sim._deliver_message(message)
    return messages
