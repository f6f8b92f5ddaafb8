"""The inbox on PostgreSQL: command messages kept from the moment a platform hands them over until handled."""

from __future__ import annotations

import logging

from bot.models import utcnow
from bot.ports import InboxEntry
from storage import inbox as sqlite_inbox
from storage.postgres.db import Connection, PgDatabase

log = logging.getLogger(__name__)

SETTLE_WITH_JOB = """
UPDATE inbox SET state = 'settled', payload = ''
WHERE platform = $1 AND state = 'pending' AND EXISTS (
    SELECT 1 FROM jobs
    WHERE jobs.platform = inbox.platform AND jobs.channel_id = inbox.chat_id
      AND jobs.destination->>'source_message_id' = inbox.message_id
)
"""


class PgInbox:
    """Inbox on PostgreSQL, keyed by (platform, chat, message): each message is handled once."""

    def __init__(self, db: PgDatabase) -> None:
        self.db = db
        self._settled = 0

    async def record(self, platform: str, chat_id: str, message_id: str, payload: str) -> bool:
        async with self.db.transaction() as conn:
            status = await conn.execute(
                "INSERT INTO inbox (platform, chat_id, message_id, payload, state, received_at) "
                "VALUES ($1, $2, $3, $4, 'pending', $5) ON CONFLICT DO NOTHING",
                platform,
                chat_id,
                message_id,
                payload,
                utcnow(),
            )
        return bool(status == "INSERT 0 1")

    async def settle(self, platform: str, chat_id: str, message_id: str) -> None:
        self._settled += 1
        async with self.db.transaction() as conn:
            await conn.execute(
                "UPDATE inbox SET state = 'settled', payload = '' "
                "WHERE platform = $1 AND chat_id = $2 AND message_id = $3",
                platform,
                chat_id,
                message_id,
            )
            if self._settled % sqlite_inbox.PRUNE_EVERY == 0:  # a bot that never restarts still forgets old keys
                await self._prune(conn, platform)

    async def _prune(self, conn: Connection, platform: str) -> None:
        await conn.execute(
            "DELETE FROM inbox WHERE platform = $1 AND state = 'settled' AND received_at < $2",
            platform,
            utcnow() - sqlite_inbox.KEEP_SETTLED,
        )

    async def pending(self, platform: str) -> list[InboxEntry]:
        async with self.db.transaction() as conn:
            # Killed after the job was written but before the row was settled: the job stands, the command is done.
            done = await conn.execute(SETTLE_WITH_JOB, platform)
            count = int(done.rsplit(" ", 1)[-1])
            if count:
                log.info("%d %s command(s) had made their job before the last stop", count, platform)
            await self._prune(conn, platform)
        rows = await self.db.fetchall(
            "SELECT chat_id, message_id, payload FROM inbox WHERE platform = ? AND state = 'pending' "
            "ORDER BY received_at, seq",
            (platform,),
        )
        return [
            InboxEntry(chat_id=row["chat_id"], message_id=row["message_id"], payload=row["payload"]) for row in rows
        ]
