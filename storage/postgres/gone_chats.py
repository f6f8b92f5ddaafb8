"""Chats the bot was removed from, shared by every process (the gone_chats table, migration 023).

A process that hears of a removal (a my_chat_member update, a 403 on a send) stores the chat; one that takes a
command from it again (the bot is back) or hears it was added back removes it. Either announces the change on
the queue channel, so every process reads the queue again: each read carries the gone chats (queue_view.py), and
each process cancels the jobs it sees there (bot/shared_chats.py). A claim of a job there asks `is_gone` before
ending it, since the chat may have come back since that process's last read.
"""

from __future__ import annotations

from storage.postgres.db import PgDatabase

# What a read of the queue carries: the chats gone within a day, or that still have a job waiting, running or being
# delivered (a chat gone long ago with nothing there costs no read; a send there would learn it again).
GONE_CHATS = """
SELECT g.platform, g.channel_id FROM gone_chats g
WHERE g.gone_at > now() - interval '1 day' OR EXISTS (
    SELECT 1 FROM jobs j WHERE j.platform = g.platform AND j.channel_id = g.channel_id
    AND (j.state IN ('queued', 'running') OR j.delivery = 'pending'))
"""


class PgGoneChats:
    """Mixed into the queue view (storage/postgres/queue_view.py PgQueueView)."""

    db: PgDatabase
    changes: str  # the channel whose NOTIFY makes every process read the queue again (queue_view.py QUEUE_CHANNEL)

    async def record_gone(self, platform: str, channel_id: str, gone: bool) -> None:
        async with self.db.transaction() as conn:
            if gone:
                status = await conn.execute(
                    "INSERT INTO gone_chats (platform, channel_id) VALUES ($1, $2) "
                    "ON CONFLICT (platform, channel_id) DO UPDATE SET gone_at = now()",
                    platform,
                    channel_id,
                )
            else:
                status = await conn.execute(
                    "DELETE FROM gone_chats WHERE platform = $1 AND channel_id = $2", platform, channel_id
                )
            if not status.endswith(" 0"):
                await conn.execute("SELECT pg_notify($1, '')", self.changes)  # every process reads the queue again

    async def is_gone(self, platform: str, channel_id: str) -> bool:
        async with self.db.pool.acquire() as conn:
            found = await conn.fetchval(
                "SELECT 1 FROM gone_chats WHERE platform = $1 AND channel_id = $2", platform, channel_id
            )
        return found is not None
