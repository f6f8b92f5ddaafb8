"""Drained backends on SQLite (one process): an admin's /admin drain, kept across restarts."""

from __future__ import annotations

from storage.db import Database


class SqliteDrains:
    """DrainRecords (bot/queue_store.py) on SQLite."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def drained_backends(self) -> set[str]:
        return {str(row["name"]) for row in await self.db.fetchall("SELECT name FROM drained_backends")}

    async def record_drain(self, name: str, drained: bool) -> None:
        async with self.db.transaction() as conn:
            if drained:
                await conn.execute("INSERT OR IGNORE INTO drained_backends (name) VALUES (?)", (name.lower(),))
            else:
                await conn.execute("DELETE FROM drained_backends WHERE name = ?", (name.lower(),))
