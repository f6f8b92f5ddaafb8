"""The chat-level records delivery needs: chats that changed id, messages recently sent, refunds."""

from __future__ import annotations

import json
import time
from collections.abc import Sequence

from bot.models import utcnow
from storage.db import Database
from storage.job_batch import iso

SENDS_KEPT_SECONDS = 300.0  # longer than any flood window (60 s per group)


class SqliteChatRecords:
    """ChatRecords on SQLite; mixed into the job store so every adapter that has the store has these too."""

    db: Database

    async def move_chat(self, platform: str, old: str, new: str) -> list[str]:
        rows = await self.db.fetchall(
            "SELECT id, destination FROM jobs WHERE platform = ? AND channel_id = ?", (platform, old)
        )
        async with self.db.transaction() as conn:
            for row in rows:
                destination = json.loads(row["destination"])
                destination["channel_id"] = new
                destination["source_message_id"] = None  # that message stays behind in the old chat
                if destination.get("server_id") == old:
                    destination["server_id"] = new
                await conn.execute(
                    "UPDATE jobs SET channel_id = ?, server_id = ?, destination = ? WHERE id = ?",
                    (new, destination["server_id"], json.dumps(destination), row["id"]),
                )
            await conn.execute(
                "UPDATE quota_ledger SET server_id = ? WHERE platform = ? AND server_id = ?", (new, platform, old)
            )
        return [str(row["id"]) for row in rows]

    async def record_sends(self, platform: str, sends: Sequence[tuple[str, float, int]]) -> None:
        async with self.db.transaction() as conn:
            await conn.executemany(
                "INSERT INTO platform_sends (platform, chat_id, sent_at, count) VALUES (?, ?, ?, ?)",
                [(platform, chat, at, count) for chat, at, count in sends],
            )
            await conn.execute("DELETE FROM platform_sends WHERE sent_at < ?", (time.time() - SENDS_KEPT_SECONDS,))

    async def recent_sends(self, platform: str, since: float) -> list[tuple[str, float, int]]:
        rows = await self.db.fetchall(
            "SELECT chat_id, sent_at, count FROM platform_sends WHERE platform = ? AND sent_at >= ? ORDER BY sent_at",
            (platform, since),
        )
        return [(str(row[0]), float(row[1]), int(row[2])) for row in rows]

    async def refund(self, job_id: str) -> None:
        async with self.db.transaction() as conn:
            await conn.execute(
                "UPDATE quota_ledger SET state = 'refunded', updated_at = ? WHERE job_id = ?", (iso(utcnow()), job_id)
            )

    async def set_messages(self, job_id: str, values: dict[str, str]) -> None:
        async with self.db.transaction() as conn:
            for key, value in values.items():
                await conn.execute(
                    "UPDATE jobs SET messages = json_set(messages, ?, ?) WHERE id = ?", (f"$.{key}", value, job_id)
                )
