"""Users (role, ban, personal limit) and per-server settings."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from dataclasses import asdict
from typing import TypeVar

from bot.ports import ServerSettings, UserRecord
from storage.db import Database

Key = tuple[str, str]
T = TypeVar("T")


async def load_once(loads: dict[Key, asyncio.Future[T]], key: Key, load: Callable[[], Awaitable[T]]) -> T:
    """Concurrent cache misses for one key share a single database read."""
    pending = loads.get(key)
    if pending is None:
        pending = loads[key] = asyncio.ensure_future(load())
        pending.add_done_callback(lambda _: loads.pop(key, None))
    return await asyncio.shield(pending)


class SqliteAccountStore:
    """AccountStore on SQLite."""

    def __init__(self, db: Database) -> None:
        self.db = db
        # Write-through caches: every command reads these (shared, read-only), only admins change them.
        self._users: dict[tuple[str, str], UserRecord] = {}
        self._servers: dict[tuple[str, str], ServerSettings] = {}
        self._user_loads: dict[Key, asyncio.Future[UserRecord]] = {}
        self._server_loads: dict[Key, asyncio.Future[ServerSettings]] = {}
        self._forgotten = 0  # counts invalidations: a read that spans one may be stale and is not cached

    def forget(self, kind: str, platform: str, key: str) -> None:
        """Drop one cached row (another process changed it: storage/postgres/account_signals.py)."""
        self._forgotten += 1
        if kind == "user":
            self._users.pop((platform, key), None)
        else:
            self._servers.pop((platform, key), None)

    def forget_all(self) -> None:
        self._forgotten += 1
        self._users.clear()
        self._servers.clear()

    async def user(self, platform: str, user_id: str) -> UserRecord:
        key = (platform, user_id)
        cached = self._users.get(key)
        if cached is None:
            seen = self._forgotten
            loaded = await load_once(self._user_loads, key, lambda: self._load_user(platform, user_id))
            if seen != self._forgotten:
                return self._users.get(key, loaded)
            cached = self._users.setdefault(key, loaded)  # a save during the read wins
        return cached

    async def _load_user(self, platform: str, user_id: str) -> UserRecord:
        row = await self.db.fetchone(
            "SELECT banned, role, daily_limit FROM users WHERE platform = ? AND user_id = ?", (platform, user_id)
        )
        if row is None:
            return UserRecord(platform=platform, user_id=user_id)
        return UserRecord(
            platform=platform,
            user_id=user_id,
            banned=bool(row["banned"]),
            role=row["role"],
            daily_limit=row["daily_limit"],
        )

    async def save_user(self, record: UserRecord) -> None:
        self._users[(record.platform, record.user_id)] = record.copy()
        async with self.db.transaction() as conn:
            await conn.execute(
                "INSERT OR REPLACE INTO users (platform, user_id, banned, role, daily_limit) VALUES (?, ?, ?, ?, ?)",
                (record.platform, record.user_id, int(record.banned), record.role, record.daily_limit),
            )

    async def server(self, platform: str, server_id: str) -> ServerSettings:
        key = (platform, server_id)
        cached = self._servers.get(key)
        if cached is None:
            seen = self._forgotten
            loaded = await load_once(self._server_loads, key, lambda: self._load_server(platform, server_id))
            if seen != self._forgotten:
                return self._servers.get(key, loaded)
            cached = self._servers.setdefault(key, loaded)  # a save during the read wins
        return cached

    async def _load_server(self, platform: str, server_id: str) -> ServerSettings:
        row = await self.db.fetchone(
            "SELECT settings FROM server_settings WHERE platform = ? AND server_id = ?", (platform, server_id)
        )
        if row is None:
            return ServerSettings(platform=platform, server_id=server_id)
        data = json.loads(row["settings"])
        data.update(platform=platform, server_id=server_id)
        return ServerSettings(**data)

    async def save_server(self, settings: ServerSettings) -> None:
        self._servers[(settings.platform, settings.server_id)] = settings.copy()
        async with self.db.transaction() as conn:
            await conn.execute(
                "INSERT OR REPLACE INTO server_settings (platform, server_id, settings) VALUES (?, ?, ?)",
                (settings.platform, settings.server_id, json.dumps(asdict(settings))),
            )

    async def paused_servers(self) -> list[str]:
        rows = await self.db.fetchall("SELECT platform, server_id, settings FROM server_settings")
        return [f"{row['platform']}:{row['server_id']}" for row in rows if json.loads(row["settings"]).get("paused")]
