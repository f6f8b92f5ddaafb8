"""Users' and servers' settings cached per process, kept fresh across processes with LISTEN/NOTIFY.

Every command reads the user's record (role, ban, limit) and the server's settings (pause, limits, presets),
so each process caches them (storage/accounts.py). A save announces its key on `imagebridge_accounts` in the
save's transaction (PostgreSQL delivers it at commit); every process drops that key from its caches, so its
next command reads the new row. If the listening connection is lost, notices may have been missed: the
caches are emptied and the connection is made again.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from typing import Any, Protocol

import asyncpg
from pydantic import SecretStr

log = logging.getLogger(__name__)

CHANNEL = "imagebridge_accounts"
NOTIFY = f"SELECT pg_notify('{CHANNEL}', $1)"


def notice(kind: str, platform: str, key: str) -> str:
    """The payload announcing that a user's ("user") or a server's ("server") row changed."""
    return json.dumps([kind, platform, key])


class Invalidated(Protocol):
    """The caches a notice empties (storage/accounts.py's account store)."""

    def forget(self, kind: str, platform: str, key: str) -> None: ...

    def forget_all(self) -> None: ...


class AccountSignals:
    """The listening connection; `run` keeps it up until cancelled. `heard` counts notices and `connects` the
    connections made (`changed` is notified at each; tests wait on them)."""

    def __init__(self, caches: Invalidated) -> None:
        self.caches = caches
        self.watchers: list[Callable[[str, str, str], None]] = []  # told each change after the caches ("*": all)
        self.heard = 0
        self.connects = 0
        self.changed = asyncio.Condition()
        self.listening = asyncio.Event()
        self._lost = asyncio.Event()
        self._conn: Any = None

    async def start(self, url: SecretStr, password: SecretStr | None = None) -> None:
        """Connect and LISTEN once (`run` also reconnects)."""
        secret = password.get_secret_value() if password is not None else None
        conn = await asyncpg.connect(url.get_secret_value(), password=secret)
        await conn.add_listener(CHANNEL, self._on_notice)
        conn.add_termination_listener(self._on_lost)
        self._conn = conn
        self._lost.clear()
        self.listening.set()
        self.connects += 1

    async def run(self, url: SecretStr, password: SecretStr | None = None, retry_seconds: float = 1.0) -> None:
        """Listen until cancelled, connecting again whenever the connection is lost (run it as a task)."""
        try:
            while True:
                if not self.listening.is_set():
                    try:
                        await self.start(url, password)
                    except (OSError, asyncpg.PostgresError) as exc:
                        log.warning("settings LISTEN failed (%s); retrying", type(exc).__name__)
                        await asyncio.sleep(retry_seconds)
                        continue
                    self.caches.forget_all()  # whatever changed while nobody listened is read again
                    self._watch("*", "", "")
                    await self._tell()
                await self._lost.wait()
                log.warning("settings LISTEN connection lost; connecting again")
        finally:
            await self.stop()

    def _on_notice(self, _conn: object, _pid: int, _channel: str, payload: str) -> None:
        try:
            kind, platform, key = json.loads(payload)
        except (ValueError, TypeError):
            self.caches.forget_all()
            self._watch("*", "", "")
        else:
            self.caches.forget(str(kind), str(platform), str(key))
            self._watch(str(kind), str(platform), str(key))
        self.heard += 1
        asyncio.get_running_loop().create_task(self._tell())

    def _watch(self, kind: str, platform: str, key: str) -> None:
        for watcher in self.watchers:
            watcher(kind, platform, key)

    async def _tell(self) -> None:
        async with self.changed:
            self.changed.notify_all()

    def _on_lost(self, _conn: object) -> None:
        self.listening.clear()
        self._lost.set()
        self.caches.forget_all()

    async def stop(self) -> None:
        if self._conn is not None:
            conn, self._conn = self._conn, None
            self.listening.clear()
            await conn.close()
