"""PTB's update queue, made durable: a command is in the inbox before Telegram is told it arrived.

python-telegram-bot's Updater (ext/_updater.py, `_start_polling.polling_action_cb`) awaits
`update_queue.put(update)` for each update of a getUpdates batch and only then sets the next offset,
which the next getUpdates sends and which confirms the batch to Telegram. Recording in `put` therefore
happens before the confirmation: a process killed at any moment has either recorded a command (and
replays it from the inbox at the next start) or not confirmed it (and Telegram sends it again).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections import deque
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

from telegram import Message, Update
from telegram.error import NetworkError

from bot.ports import Inbox

log = logging.getLogger(__name__)

PLATFORM = "telegram"


def inbox_key(message: Message) -> tuple[str, str]:
    """(chat, message): Telegram's message ids are unique within a chat."""
    return str(message.chat.id), str(message.message_id)


class DurableUpdateQueue(asyncio.Queue[object]):
    """Records each command update in the inbox on `put`; a (chat, message) seen before is dropped."""

    def __init__(self) -> None:
        super().__init__()
        self.inbox: Inbox | None = None
        self.wanted: Callable[[Update], bool] = lambda update: False  # set once the handlers exist
        # Ids recently queued; not "the highest": after a week without updates Telegram picks the next id at random.
        self._queued: deque[int] = deque(maxlen=1000)

    async def put(self, item: object) -> None:
        if isinstance(item, Update):
            if item.update_id in self._queued:  # the batch is fetched again after a failed put below
                return
            if not await self._record(item):
                return
            self._queued.append(item.update_id)
        await super().put(item)

    async def _record(self, update: Update) -> bool:
        """Record a command update; False when it is a repeat. Raises a TelegramError if it cannot be recorded."""
        if self.inbox is None or update.message is None or not self.wanted(update):
            return True
        chat_id, message_id = inbox_key(update.message)
        payload = json.dumps(update.to_dict(), ensure_ascii=False)
        try:
            fresh = await self.inbox.record(PLATFORM, chat_id, message_id, payload)
        except Exception as exc:
            # Not confirmed then: PTB's polling loop retries a TelegramError with a backoff and fetches it again.
            raise NetworkError(f"could not record telegram update {update.update_id}: {exc!r}") from exc
        if not fresh:
            log.info("telegram message %s in chat %s was received before; not handled again", message_id, chat_id)
        return fresh

    async def replay(self, bot: Any) -> int:
        """Queue the commands recorded but not handled before the last stop; returns how many."""
        if self.inbox is None:
            return 0
        entries = await self.inbox.pending(PLATFORM)
        for entry in entries:
            try:
                update = Update.de_json(json.loads(entry.payload), bot)
            except (ValueError, TypeError, KeyError) as exc:  # one unreadable row must not stop the bot starting
                log.error("telegram message %s in chat %s cannot be replayed: %r", entry.message_id, entry.chat_id, exc)
                await self.inbox.settle(PLATFORM, entry.chat_id, entry.message_id)
                continue
            await super().put(update)
        if entries:
            log.info("replaying %d telegram command(s) received before the last stop", len(entries))
        return len(entries)


@asynccontextmanager
async def handling(inbox: Inbox | None, message: Message) -> AsyncIterator[None]:
    """Settle the message's inbox row once its handler ends; a cancelled handler leaves it for the next start."""
    try:
        yield
    except asyncio.CancelledError:
        raise
    except BaseException:
        await _settle(inbox, message)
        raise
    await _settle(inbox, message)


async def _settle(inbox: Inbox | None, message: Message) -> None:
    if inbox is not None:
        await inbox.settle(PLATFORM, *inbox_key(message))
