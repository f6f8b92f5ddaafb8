"""One Bot API call as the outbound makes it: paced, 429s waited out, moved chats followed, dead chats reported.

Telegram has no idempotency key: a send whose answer was lost may have been posted. Errors are sorted into
"never reached Telegram" (safe to send again), "refused for good" (`Refused`) and "answer lost" (ambiguous:
the caller decides from what it recorded whether to send again).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any, TypeVar

import httpx
from telegram.error import BadRequest, ChatMigrated, Forbidden, RetryAfter, TelegramError

from adapters.telegram.pacing import ChatPacer

log = logging.getLogger(__name__)

T = TypeVar("T")
PROGRESS_ATTEMPTS = 3
NEVER_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)  # the request never left this process
ChatHook = Callable[[int, int], Awaitable[None]]


class Refused(Exception):
    """Telegram refused a call for good (400 or 403): sending it again cannot help."""

    def __init__(self, chat_id: int, message: str, gone: bool) -> None:
        super().__init__(message)
        self.chat_id = chat_id
        self.message = message
        self.gone = gone


def retry_seconds(exc: RetryAfter) -> float:
    value = exc.retry_after
    return value.total_seconds() if isinstance(value, timedelta) else float(value)


def answer_lost(exc: TelegramError) -> bool:
    """True when the request may have reached Telegram and taken effect (a timeout or a dropped answer)."""
    return not isinstance(exc.__cause__, NEVER_SENT)


class TelegramCalls:
    """Makes Bot API calls for one bot: pacing, flood waits, chat migrations and removals."""

    def __init__(self, pacer: ChatPacer) -> None:
        self.pacer = pacer
        self.retry_after_count = 0
        self.on_rate_limited: Callable[[], None] | None = None  # metrics
        self.on_chat_moved: ChatHook | None = None  # (old id, new id): stored jobs follow the chat
        self.on_chat_gone: Callable[[int], Awaitable[None]] | None = None  # kicked, blocked, deleted
        self.moved: dict[int, int] = {}
        self._blocked_until: dict[int, float] = {}
        self._uploading: dict[int, asyncio.Lock] = {}
        self.closed = False  # the platform stopped: its HTTP client is gone, so a call fails at once, untried

    def chat(self, chat_id: int) -> int:
        """The chat's current id (a group that became a supergroup has a new one)."""
        while chat_id in self.moved:
            chat_id = self.moved[chat_id]
        return chat_id

    async def call(
        self,
        chat_id: int,
        make: Callable[[int], Awaitable[T]],
        attempts: int = PROGRESS_ATTEMPTS,
        *,
        messages: int = 0,
        low_priority: bool = False,
        strict: bool = False,
        retry_lost: bool = True,
        then: Callable[[int, Any], Awaitable[None]] | None = None,
        moves: bool = True,
        upload: bool = False,
    ) -> tuple[bool, T | None]:
        """Run `make(chat id)`; (True, None) when Telegram says "not modified"; (False, None) when it failed.

        `messages` counts the call against the chat's flood limits; a `low_priority` call (a progress edit) is
        skipped rather than delayed. `strict` raises `Refused` for a 400/403 instead of returning False. A call
        whose answer was lost (it may have taken effect) is repeated only with `retry_lost`.
        `upload` marks a call that carries a file (slow to arrive). `moves=False` for a call on an existing
        message: it stays in the chat it was posted in, even when that chat became a supergroup (then the call
        fails). `then(chat, result)` records what a call did; a caller that may be cancelled and must not lose that
        record wraps the whole call in `bot.lifecycle.uncancelled`.
        """

        async def run(chat: int) -> T:
            result = await make(chat)
            if then is not None:
                await then(chat, result)
            return result

        for attempt in range(1, attempts + 1):
            if self.closed:  # also between the tries of a call that began before the platform stopped
                log.info("chat %s: not sent, the Telegram platform stopped (the next start sends it)", chat_id)
                return False, None
            chat = self.chat(chat_id) if moves else chat_id
            wait = self._blocked_until.get(chat, 0.0) - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            # A quick message must not overtake a slow upload on its way to Telegram, which counts both when they
            # arrive: while an upload to the chat is in flight, other counted calls there wait for its answer.
            lock = self._uploading.setdefault(chat, asyncio.Lock())
            if messages and lock.locked():
                if low_priority:
                    return False, None
                async with lock:
                    pass
            backoff = 0.0
            async with lock if upload else contextlib.nullcontext():
                taken = await self.pacer.take(chat, messages, low_priority) if messages else 0.0
                if taken is None:
                    return False, None
                try:
                    return True, await run(chat)  # no task hop between taking room in the pacer and sending
                except ChatMigrated as exc:
                    await self._follow(chat, int(exc.new_chat_id))
                    if not moves:
                        return False, None
                except RetryAfter as exc:
                    self._rate_limited(chat, exc, attempt)
                except BadRequest as exc:
                    if "not modified" in exc.message.lower():
                        return True, None
                    log.warning("chat %s: Telegram refused: %s", chat, exc.message)
                    gone = "chat not found" in exc.message.lower()
                    if gone:
                        await self._gone(chat)
                    if strict:
                        raise Refused(chat, exc.message, gone=gone) from exc
                    return False, None
                except Forbidden as exc:
                    log.warning("chat %s: bot cannot write here: %s", chat, exc.message)
                    await self._gone(chat)
                    if strict:
                        raise Refused(chat, exc.message, gone=True) from exc
                    return False, None
                except TelegramError as exc:
                    log.warning("chat %s: Telegram error (attempt %d): %s", chat, attempt, exc)
                    if answer_lost(exc) and not retry_lost:
                        return False, None  # it may have been posted: the caller decides from its records
                    backoff = min(2.0**attempt, 10.0) * 0.1
                finally:
                    if messages:
                        self.pacer.settle(chat, messages, taken)
            if backoff:
                await asyncio.sleep(backoff)
        return False, None

    def _rate_limited(self, chat: int, exc: RetryAfter, attempt: int) -> None:
        self.retry_after_count += 1
        if self.on_rate_limited is not None:
            self.on_rate_limited()
        seconds = retry_seconds(exc)
        until = time.monotonic() + seconds
        self._blocked_until[chat] = max(self._blocked_until.get(chat, 0.0), until)
        log.info("chat %s: flood control, retry in %.2f s (attempt %d)", chat, seconds, attempt)

    async def _follow(self, old: int, new: int) -> None:
        log.info("chat %s became supergroup %s; following it", old, new)
        self.moved[old] = new
        if self.on_chat_moved is not None:
            await self.on_chat_moved(old, new)

    async def _gone(self, chat: int) -> None:
        if self.on_chat_gone is not None:
            await self.on_chat_gone(chat)
