"""Staying inside Telegram's flood limits instead of provoking 429s.

Telegram allows about one message a second per chat (short bursts pass) and 20 a minute per group;
edits count too. The pacer keeps a sliding window per chat and per group with a safety margin:
results wait for room, progress edits are skipped when room is short (a later edit shows the newer
state anyway), so the bot's own traffic never asks for more than Telegram gives.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

# Limits with a margin under Telegram's (and the simulator's) 3 per 3 s per chat and 20 per 60 s per group.
CHAT_LIMIT, CHAT_WINDOW = 3, 3.3
GROUP_LIMIT, GROUP_WINDOW = 19, 62.0
LOW_PRIORITY_HEADROOM = 0.5  # progress edits only use the window while at least half of it is free


@dataclass
class ChatPacer:
    """Sliding-window budgets per chat and per group; `scale` shrinks the windows (simulators run faster)."""

    scale: float = 1.0
    clock: Callable[[], float] = time.monotonic
    on_sent: Callable[[int, int], None] | None = None  # (chat, count): remembered across restarts
    _sent: dict[tuple[str, int], deque[float]] = field(default_factory=dict)

    def _windows(self, chat_id: int) -> list[tuple[tuple[str, int], int, float]]:
        windows = [(("chat", chat_id), CHAT_LIMIT, CHAT_WINDOW * self.scale)]
        if chat_id < 0:
            windows.append((("group", chat_id), GROUP_LIMIT, GROUP_WINDOW * self.scale))
        return windows

    def _recent(self, key: tuple[str, int], window: float, now: float) -> deque[float]:
        sent = self._sent.setdefault(key, deque())
        while sent and sent[0] <= now - window:
            sent.popleft()
        return sent

    def delay(self, chat_id: int, count: int = 1) -> float:
        """Seconds until `count` more messages fit in every window of the chat.

        A batch larger than a window (an album of 10 against 3 a chat) waits until that window is empty,
        as Telegram lets a burst through into an idle chat.
        """
        now = self.clock()
        wait = 0.0
        for key, limit, window in self._windows(chat_id):
            sent = self._recent(key, window, now)
            over = len(sent) + min(count, limit) - limit
            if over > 0 and sent:
                wait = max(wait, sent[min(over, len(sent)) - 1] + window - now)
        return max(0.0, wait)

    def seed(self, chat_id: int, ages: list[float]) -> None:
        """Count messages sent `ages` seconds ago (by an earlier run of the bot) against the chat's windows."""
        now = self.clock()
        for key, _, window in self._windows(chat_id):
            sent = self._recent(key, window, now)
            merged = sorted([*sent, *(now - age for age in ages if age < window)])
            sent.clear()
            sent.extend(merged)

    def headroom(self, chat_id: int) -> float:
        """The smallest free fraction over the chat's windows."""
        now = self.clock()
        return min(1 - len(self._recent(key, window, now)) / limit for key, limit, window in self._windows(chat_id))

    async def acquire(self, chat_id: int, count: int = 1, low_priority: bool = False) -> bool:
        """Wait for room for `count` messages and take it; a low-priority caller gets False instead of waiting."""
        return await self.take(chat_id, count, low_priority) is not None

    async def take(self, chat_id: int, count: int = 1, low_priority: bool = False) -> float | None:
        """`acquire`, returning when the room was taken (for `settle`), or None for a skipped low-priority call."""
        if low_priority and (self.headroom(chat_id) < LOW_PRIORITY_HEADROOM or self.delay(chat_id, count) > 0):
            return None
        while (wait := self.delay(chat_id, count)) > 0:  # noqa: ASYNC110 - waiting for time, not for an event
            await asyncio.sleep(wait)
        now = self.clock()
        for key, _, window in self._windows(chat_id):
            self._recent(key, window, now).extend([now] * count)
        if self.on_sent is not None:
            self.on_sent(chat_id, count)
        return now

    def settle(self, chat_id: int, count: int, taken: float) -> None:
        """The call taken at `taken` is answered: Telegram counted it on arrival, which an upload reaches late, so
        the window counts it from now (a fast message sent after a slow upload cannot overtake it in the window)."""
        now = self.clock()
        for key, _, window in self._windows(chat_id):
            sent = self._recent(key, window, now)
            left, moved = count, []
            for stamp in sent:
                if left and stamp == taken:
                    left -= 1
                    moved.append(now)
                else:
                    moved.append(stamp)
            sent.clear()
            sent.extend(sorted(moved))
