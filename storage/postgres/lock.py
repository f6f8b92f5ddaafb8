"""One bot process per PostgreSQL database, until the engine claims its jobs from the store.

Today each process still keeps the queue in memory (the engine recovers every queued job at start), so
two processes on one database would run the same jobs twice, as on SQLite. A session advisory lock, held
on a connection of its own for the life of the process, refuses the second one; PostgreSQL drops it when
the process dies (its connection closes), so a kill -9 leaves nothing stale. The holder is found through
pg_stat_activity by the application name each process connects with.
"""

from __future__ import annotations

import os
import socket
from typing import Any

import asyncpg
from pydantic import SecretStr

from bot.errors import ConfigError
from bot.models import utcnow

LOCK_KEY = 0x1B17_0017  # fits in 32 bits: pg_locks shows it as objid with classid 0
HELD = (
    "another imagebridge process ({holder}) is running on this PostgreSQL database. Until the engine claims "
    "jobs from the store (coming; docs/postgresql.md), one bot process runs per database: stop that one first."
)
HOLDER = (
    "SELECT a.application_name FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
    "WHERE l.locktype = 'advisory' AND l.granted AND l.classid = 0 AND l.objid = $1 AND l.database = "
    "(SELECT oid FROM pg_database WHERE datname = current_database())"
)


class PgProcessLock:
    """A session advisory lock on its own connection; released by `release()` or the process's end."""

    def __init__(self) -> None:
        self._conn: Any = None

    async def acquire(self, url: SecretStr, password: SecretStr | None = None) -> PgProcessLock:
        me = f"imagebridge pid {os.getpid()} on {socket.gethostname()}, since {utcnow():%Y-%m-%d %H:%M:%S} UTC"
        secret = password.get_secret_value() if password is not None else None
        conn = await asyncpg.connect(
            url.get_secret_value(), password=secret, server_settings={"application_name": me[:63]}
        )
        if not await conn.fetchval("SELECT pg_try_advisory_lock($1)", LOCK_KEY):
            holder = await conn.fetchval(HOLDER, LOCK_KEY)
            await conn.close()
            raise ConfigError(HELD.format(holder=holder or "pid unknown"))
        self._conn = conn
        return self

    async def release(self) -> None:
        if self._conn is not None:
            conn, self._conn = self._conn, None
            await conn.close()  # the session ends: PostgreSQL drops its advisory locks
