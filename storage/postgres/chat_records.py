"""ChatRecords on PostgreSQL: chats that changed id, messages recently sent, refunds, message ids."""

from __future__ import annotations

import json
import time
from collections.abc import Sequence

from bot.models import utcnow
from storage.chat_records import SENDS_KEPT_SECONDS
from storage.postgres.db import PgDatabase


class PgChatRecords:
    """Mixed into the PostgreSQL job store, as SqliteChatRecords is into the SQLite one."""

    db: PgDatabase

    async def move_chat(self, platform: str, old: str, new: str) -> list[str]:
        async with self.db.transaction() as conn:
            rows = await conn.fetch(
                "UPDATE jobs SET channel_id = $3, "
                "server_id = CASE WHEN server_id = $2 THEN $3 ELSE server_id END, "
                "destination = destination || jsonb_build_object('channel_id', $3::text, 'source_message_id', NULL, "
                "'server_id', CASE WHEN server_id = $2 THEN $3 ELSE server_id END) "
                "WHERE platform = $1 AND channel_id = $2 RETURNING id",
                platform,
                old,
                new,
            )
            await conn.execute(
                "UPDATE quota_ledger SET server_id = $3 WHERE platform = $1 AND server_id = $2", platform, old, new
            )
        return [str(row["id"]) for row in rows]

    async def record_sends(self, platform: str, sends: Sequence[tuple[str, float, int]]) -> None:
        async with self.db.transaction() as conn:
            await conn.executemany(
                "INSERT INTO platform_sends (platform, chat_id, sent_at, count) VALUES ($1, $2, $3, $4)",
                [(platform, chat, at, count) for chat, at, count in sends],
            )
            await conn.execute("DELETE FROM platform_sends WHERE sent_at < $1", time.time() - SENDS_KEPT_SECONDS)

    async def recent_sends(self, platform: str, since: float) -> list[tuple[str, float, int]]:
        rows = await self.db.fetchall(
            "SELECT chat_id, sent_at, count FROM platform_sends WHERE platform = ? AND sent_at >= ? ORDER BY sent_at",
            (platform, since),
        )
        return [(str(row[0]), float(row[1]), int(row[2])) for row in rows]

    async def refund(self, job_id: str) -> None:
        async with self.db.transaction() as conn:
            await conn.execute(
                "UPDATE quota_ledger SET state = 'refunded', updated_at = $1 WHERE job_id = $2", utcnow(), job_id
            )

    async def set_messages(self, job_id: str, values: dict[str, str]) -> None:
        async with self.db.transaction() as conn:
            await conn.execute(
                "UPDATE jobs SET messages = messages || $1::jsonb WHERE id = $2", json.dumps(values), job_id
            )
