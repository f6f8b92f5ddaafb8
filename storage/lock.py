"""One bot process per SQLite database: an OS lock on a file next to it, gone when the process dies.

Two processes on one SQLite file each keep the queue in memory, so both would run every recovered job.
`flock` is held by the open file, not by a name: a kill -9 closes it and no stale lock remains, and two
opens in one process conflict too (two App instances in a test). The file keeps who holds it, for the message.
"""

from __future__ import annotations

import fcntl
import os
import socket
from pathlib import Path

from bot.errors import ConfigError
from bot.models import utcnow

HELD = (
    "another imagebridge process ({holder}) is running on the SQLite database {database}. "
    "SQLite serves one bot process: stop that one first, or move both to PostgreSQL "
    '([storage] url = "postgresql://…"; see docs/postgresql.md) to run several.'
)


class ProcessLock:
    """An exclusive lock on `<database>.lock`, held until `release()` or the end of the process."""

    def __init__(self, database: Path) -> None:
        self.database = database
        self.path = database.with_name(database.name + ".lock")
        self._fd: int | None = None

    def acquire(self) -> ProcessLock:
        """Take the lock or raise ConfigError naming the holder (pid, host, since when)."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 512, 0).decode("utf-8", "replace").strip() or "pid unknown"
            os.close(fd)
            raise ConfigError(HELD.format(holder=holder, database=self.database.resolve())) from None
        os.ftruncate(fd, 0)
        os.pwrite(
            fd, f"pid {os.getpid()} on {socket.gethostname()}, since {utcnow():%Y-%m-%d %H:%M:%S} UTC".encode(), 0
        )
        self._fd = fd
        return self

    def release(self) -> None:
        if self._fd is not None:
            fd, self._fd = self._fd, None
            os.ftruncate(fd, 0)  # a later reader sees no holder
            os.close(fd)  # closing the descriptor releases the flock
