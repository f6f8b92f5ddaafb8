"""One holder at a time of a named role across processes: Telegram polling runs in exactly one process.

A session advisory lock taken on a connection of its own. `acquire` waits while another process holds the
role and returns once this one does; when the holder dies its connection closes, PostgreSQL drops the lock,
and a waiting process takes over. If this process loses its connection, `lost` is set: it must stop doing
the role's work (another process may already have taken it).
"""

from __future__ import annotations

import asyncio
import os
import socket
from typing import Any

import asyncpg
from pydantic import SecretStr

KEY = "SELECT hashtextextended($1, 1718)"  # the role's name as the lock's 64-bit key
ALIVE_SECONDS = 5.0  # a holding session that takes longer to answer SELECT 1 is taken for lost


class Leadership:
    """A named role held by at most one process (e.g. "telegram-poller")."""

    def __init__(self, role: str, url: SecretStr | None = None, password: SecretStr | None = None) -> None:
        self.role = role
        self._url, self._password = url, password  # the defaults of acquire() and try_acquire()
        self.lost = asyncio.Event()
        self._conn: Any = None

    @property
    def held(self) -> bool:
        return self._conn is not None and not self.lost.is_set()

    async def acquire(self, url: SecretStr | None = None, password: SecretStr | None = None) -> None:
        """Wait until this process holds the role (cancel the wait to give up)."""
        conn = await self._connect(url, password)
        try:
            await conn.execute(f"SELECT pg_advisory_lock(({KEY}))", self.role)
        except BaseException:
            conn.terminate()  # also ends a wait still queued on the server
            raise
        self._hold(conn)

    async def try_acquire(self, url: SecretStr | None = None, password: SecretStr | None = None) -> bool:
        """Take the role if nobody holds it; False at once otherwise."""
        conn = await self._connect(url, password)
        if not await conn.fetchval(f"SELECT pg_try_advisory_lock(({KEY}))", self.role):
            await conn.close()
            return False
        self._hold(conn)
        return True

    async def _connect(self, url: SecretStr | None, password: SecretStr | None) -> Any:
        """A connection of its own; a wait cancelled while connecting closes the connection once it is made."""
        made = asyncio.ensure_future(self._open(url, password))
        try:
            return await asyncio.shield(made)
        except asyncio.CancelledError:
            made.add_done_callback(_terminate)
            raise

    async def _open(self, url: SecretStr | None, password: SecretStr | None) -> Any:
        url, password = url or self._url, password or self._password
        if url is None:
            raise ValueError(f"Leadership({self.role!r}): no database URL")
        name = f"imagebridge {self.role} pid {os.getpid()} on {socket.gethostname()}"[:63]
        secret = password.get_secret_value() if password is not None else None
        # The server notices a vanished host (no FIN) by TCP keepalives: about 10 s here instead of hours.
        keepalive = {"tcp_keepalives_idle": "5", "tcp_keepalives_interval": "2", "tcp_keepalives_count": "3"}
        return await asyncpg.connect(
            url.get_secret_value(), password=secret, server_settings={"application_name": name, **keepalive}
        )

    def _hold(self, conn: Any) -> None:
        self.lost.clear()
        conn.add_termination_listener(lambda _conn: self.lost.set())
        self._conn = conn

    async def alive(self) -> bool:
        """Whether the holding session still answers; if not it is ended and `lost` set (the lock may be gone)."""
        conn = self._conn
        if conn is None or self.lost.is_set():
            return False
        try:
            await asyncio.wait_for(conn.fetchval("SELECT 1"), ALIVE_SECONDS)
        except (TimeoutError, OSError, asyncpg.PostgresError, asyncpg.InterfaceError, asyncpg.InternalClientError):
            # InternalClientError: the server's termination notice arrived while SELECT 1 was in flight
            conn.terminate()
            self.lost.set()
            return False
        return True

    async def release(self) -> None:
        """Give the role up (closing the session releases the lock)."""
        if self._conn is not None:
            conn, self._conn = self._conn, None
            if conn.is_closed():  # lost: the server already ended the session
                return
            try:
                await conn.close()
            except (OSError, asyncpg.PostgresError):
                conn.terminate()


def _terminate(made: asyncio.Future[Any]) -> None:
    if not made.cancelled() and made.exception() is None:
        made.result().terminate()
