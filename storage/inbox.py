"""The inbox: command messages kept from the moment a platform hands them over until they are handled."""

from __future__ import annotations

import logging
from datetime import timedelta

import aiosqlite

from bot.models import utcnow
from bot.ports import InboxEntry
from storage.db import Database

log = logging.getLogger(__name__)

KEEP_SETTLED = timedelta(days=2)  # Telegram keeps unconfirmed updates 24 h: a repeat can come no later
PRUNE_EVERY = 1000  # settles between two prunes

SETTLE_WITH_JOB = """
UPDATE inbox SET state = 'settled', payload = ''
WHERE platform = ? AND state = 'pending' AND EXISTS (
    SELECT 1 FROM jobs
    WHERE jobs.platform = inbox.platform AND jobs.channel_id = inbox.chat_id
      AND json_extract(jobs.destination, '$.source_message_id') = inbox.message_id
)
"""


class SqliteInbox:
    """Inbox on SQLite, keyed by (platform, chat, message): each message is handled once."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self._settled = 0

    async def record(self, platform: str, chat_id: str, message_id: str, payload: str) -> bool:
        async with self.db.transaction() as conn:
            cursor = await conn.execute(
                "INSERT OR IGNORE INTO inbox (platform, chat_id, message_id, payload, state, received_at) "
                "VALUES (?, ?, ?, ?, 'pending', ?)",
                (platform, chat_id, message_id, payload, utcnow().isoformat()),
            )
            return cursor.rowcount == 1

    async def settle(self, platform: str, chat_id: str, message_id: str) -> None:
        self._settled += 1
        async with self.db.transaction() as conn:
            await conn.execute(
                "UPDATE inbox SET state = 'settled', payload = '' "
                "WHERE platform = ? AND chat_id = ? AND message_id = ?",
                (platform, chat_id, message_id),
            )
            if self._settled % PRUNE_EVERY == 0:  # a bot that never restarts still forgets old keys
                await self._prune(conn, platform)

    async def _prune(self, conn: aiosqlite.Connection, platform: str) -> None:
        await conn.execute(
            "DELETE FROM inbox WHERE platform = ? AND state = 'settled' AND received_at < ?",
            (platform, (utcnow() - KEEP_SETTLED).isoformat()),
        )

    async def pending(self, platform: str) -> list[InboxEntry]:
        async with self.db.transaction() as conn:
            # Killed after the job was written but before the row was settled: the job stands, the command is done.
            done = await conn.execute(SETTLE_WITH_JOB, (platform,))
            if done.rowcount:
                log.info("%d %s command(s) had made their job before the last stop", done.rowcount, platform)
            await self._prune(conn, platform)
        rows = await self.db.fetchall(
            "SELECT chat_id, message_id, payload FROM inbox WHERE platform = ? AND state = 'pending' "
            "ORDER BY received_at, rowid",
            (platform,),
        )
        return [
            InboxEntry(chat_id=row["chat_id"], message_id=row["message_id"], payload=row["payload"]) for row in rows
        ]
