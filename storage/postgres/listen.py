"""LISTEN/NOTIFY: new work and cancels, pushed by PostgreSQL to every process that listens.

One dedicated connection (LISTEN does not mix with a pool). New jobs set an event a claimer waits on;
cancels are queued by job id. A missed signal costs only latency: claimers also poll, and a cancel is
kept on the job row for the lease renewal to see.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import asyncpg
from pydantic import SecretStr

from storage.postgres.job_insert import NEW_JOB_CHANNEL
from storage.postgres.jobs import CANCEL_CHANNEL

log = logging.getLogger(__name__)


class Signals:
    """A listening connection: `work` is set when jobs are queued, `cancels` receives job ids."""

    def __init__(self) -> None:
        self.work = asyncio.Event()
        self.cancels: asyncio.Queue[str] = asyncio.Queue()
        self._conn: Any = None

    async def start(self, url: SecretStr, password: SecretStr | None = None) -> Signals:
        secret = password.get_secret_value() if password is not None else None
        self._conn = await asyncpg.connect(url.get_secret_value(), password=secret)
        await self._conn.add_listener(NEW_JOB_CHANNEL, self._on_work)
        await self._conn.add_listener(CANCEL_CHANNEL, self._on_cancel)
        return self

    def _on_work(self, _conn: object, _pid: int, _channel: str, _payload: str) -> None:
        self.work.set()

    def _on_cancel(self, _conn: object, _pid: int, _channel: str, payload: str) -> None:
        self.cancels.put_nowait(payload)

    async def wait_for_work(self, seconds: float) -> bool:
        """True if jobs were queued (since the last wait) before the timeout; clears the signal."""
        try:
            await asyncio.wait_for(self.work.wait(), seconds)
        except TimeoutError:
            return False
        self.work.clear()
        return True

    async def stop(self) -> None:
        if self._conn is not None:
            conn, self._conn = self._conn, None
            await conn.close()
