"""Telegram long polling in exactly one process at a time (several bot processes on one PostgreSQL).

The Bot API serves one getUpdates caller per bot: a second one ends the first with 409 Conflict
("terminated by other getUpdates request"), and the two would keep cutting each other off. So on PostgreSQL
every process builds the Telegram platform (it sends results, edits status messages, answers buttons), but
only the holder of the `telegram-polling` role (storage/postgres/leader.py, a session advisory lock) polls
and replays the inbox. When the holder dies its connection closes, PostgreSQL drops the lock and a waiting
process takes over: Telegram hands it every update not yet confirmed (the confirmed offset lives on
Telegram's side), and the inbox drops the ones the old holder had already recorded (chat + message id).
The project has no webhook mode: polling is the only way updates arrive.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Protocol

log = logging.getLogger(__name__)

ROLE = "telegram-polling"


class Role(Protocol):
    """A role held by at most one process (storage/postgres/leader.py's Leadership)."""

    lost: asyncio.Event

    async def acquire(self) -> None: ...

    async def release(self) -> None: ...

    async def alive(self) -> bool: ...


class PollingTurn:
    """Runs `begin` once this process holds the role and `end` when it loses it; waits for it again after."""

    def __init__(
        self, role: Role, begin: Callable[[], Awaitable[None]], end: Callable[[], Awaitable[None]], retry: float = 2.0
    ) -> None:
        self.role = role
        self._begin, self._end = begin, end
        self._retry = retry
        self._check = 5.0  # seconds between checks that the role's session still answers
        self.polling = asyncio.Event()  # set while this process polls
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name="telegram-polling-role")

    async def _run(self) -> None:
        while True:
            try:
                await self.role.acquire()
            except Exception as exc:  # the database is away (asyncpg's errors are not OSErrors): try again
                log.warning("telegram polling role: cannot take it (%s); retrying", type(exc).__name__)
                await asyncio.sleep(self._retry)
                continue
            log.info("telegram: this process holds the polling role; polling")
            try:
                await self._hold()
            except Exception:
                log.exception("telegram polling failed to start; giving the role up and trying again")
                await asyncio.sleep(self._retry)

    async def _hold(self) -> None:
        try:
            await self._begin()
            self.polling.set()
            while not await self._lost_within(self._check):  # a silent network is found by asking
                if not await self.role.alive():
                    break
            log.warning("telegram: lost the polling role (database connection closed); polling stops here")
        finally:
            self.polling.clear()
            try:
                await self._end()
            finally:
                await self.role.release()

    async def _lost_within(self, seconds: float) -> bool:
        try:
            await asyncio.wait_for(self.role.lost.wait(), seconds)
        except TimeoutError:
            return False
        return True

    async def stop(self) -> None:
        """Stop polling (if this process polls) and give the role up."""
        if self._task is not None:
            task, self._task = self._task, None
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
