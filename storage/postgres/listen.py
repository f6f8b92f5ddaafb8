"""LISTEN/NOTIFY: new work, cancels and queue changes, pushed by PostgreSQL to every process that listens.

One dedicated connection (LISTEN does not mix with a pool). New jobs set an event a claimer waits on;
cancels are queued by job id. When the connection is lost the waiters are woken (they poll the store, so
nothing sent meanwhile is missed for long: claims read the table, cancels are kept on the job row) and
`run` connects again.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import asyncpg
from pydantic import SecretStr

from storage.postgres.job_insert import NEW_JOB_CHANNEL
from storage.postgres.jobs import CANCEL_CHANNEL
from storage.postgres.queue_view import QUEUE_CHANNEL

log = logging.getLogger(__name__)

FINISHED_CHANNEL = "imagebridge_finished"  # a job finished in a process that cannot deliver it


async def signalled(event: asyncio.Event, seconds: float) -> bool:
    """Whether the event was set before the timeout; a set event is cleared (the signal is taken)."""
    try:
        async with asyncio.timeout(seconds):  # not wait_for: on 3.11 it can swallow a racing cancellation
            await event.wait()
    except TimeoutError:
        return False
    event.clear()
    return True


class Signals:
    """A listening connection: `work` is set when jobs are queued, `cancels` receives job ids."""

    def __init__(self, owner: str | None = None) -> None:
        self.owner = owner  # names the connection: claims see a process is gone when it is (claims.py reap)
        self.work = asyncio.Event()
        self.cancels: asyncio.Queue[str] = asyncio.Queue()
        self.finished = asyncio.Event()
        self.changed = asyncio.Event()  # the queue changed (every channel says so): views read it again
        self.listening = asyncio.Event()  # set while LISTEN is in place
        self._lost = asyncio.Event()
        self._conn: Any = None

    async def start(self, url: SecretStr, password: SecretStr | None = None) -> Signals:
        """Connect and LISTEN once (`run` also reconnects)."""
        secret = password.get_secret_value() if password is not None else None
        named = {"application_name": f"imagebridge {self.owner}"[:63]} if self.owner else None
        conn = await asyncpg.connect(url.get_secret_value(), password=secret, server_settings=named)
        try:
            await conn.add_listener(NEW_JOB_CHANNEL, self._on_work)
            await conn.add_listener(CANCEL_CHANNEL, self._on_cancel)
            await conn.add_listener(FINISHED_CHANNEL, self._on_finished)
            await conn.add_listener(QUEUE_CHANNEL, self._on_changed)
        except BaseException:  # cancelled (the process stops) while setting up: no connection left behind
            conn.terminate()
            raise
        conn.add_termination_listener(self._on_lost)
        self._conn = conn
        self._lost.clear()
        self.listening.set()
        return self

    async def run(self, url: SecretStr, password: SecretStr | None = None, retry_seconds: float = 1.0) -> None:
        """Listen until cancelled, connecting again whenever the connection is lost (run it as a task)."""
        try:
            while True:
                try:
                    await self.start(url, password)
                except (OSError, asyncpg.PostgresError) as exc:
                    log.warning("LISTEN connection failed (%s); retrying in %.0f s", exc, retry_seconds)
                    await asyncio.sleep(retry_seconds)
                    continue
                await self._lost.wait()
                log.warning("LISTEN connection lost; connecting again")
        finally:
            await self.stop()

    def _on_work(self, _conn: object, _pid: int, _channel: str, _payload: str) -> None:
        self.work.set()
        self.changed.set()

    def _on_finished(self, _conn: object, _pid: int, _channel: str, _payload: str) -> None:
        self.finished.set()
        self.changed.set()

    def _on_cancel(self, _conn: object, _pid: int, _channel: str, payload: str) -> None:
        self.cancels.put_nowait(payload)
        self.changed.set()

    def _on_changed(self, _conn: object, _pid: int, _channel: str, _payload: str) -> None:
        self.changed.set()

    def _on_lost(self, _conn: object) -> None:
        self.listening.clear()
        self._lost.set()
        self.work.set()  # signals may have been missed: every waiter looks at the store now
        self.finished.set()
        self.changed.set()

    async def wait_for_work(self, seconds: float) -> bool:
        """True if jobs were queued (or signals may have been missed) before the timeout; clears the signal."""
        return await signalled(self.work, seconds)

    async def wait_for_change(self, seconds: float) -> bool:
        """True if the queue changed (or signals may have been missed) before the timeout; clears the signal."""
        return await signalled(self.changed, seconds)

    async def wait_for_finished(self) -> None:
        """Return once a job finished in a process that could not deliver it (then clear the signal)."""
        await self.finished.wait()
        self.finished.clear()

    async def next_cancel(self) -> str:
        """The id of the next job someone asked to cancel (from any process)."""
        return await self.cancels.get()

    async def stop(self) -> None:
        if self._conn is not None:
            conn, self._conn = self._conn, None
            self.listening.clear()
            await conn.close()
