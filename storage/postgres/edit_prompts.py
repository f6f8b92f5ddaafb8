"""The Edit button's prompts on PostgreSQL (bot/edit_prompts.py), kept a week, as on SQLite."""

from __future__ import annotations

from bot.edit_prompts import EditPrompt
from bot.models import utcnow
from storage.edit_prompts import KEEP, SqliteEditPrompts
from storage.postgres.db import PgDatabase


class PgEditPrompts(SqliteEditPrompts):
    """EditPrompts keyed by (platform, chat, message): SQLite's neutral read, PostgreSQL's upsert."""

    def __init__(self, db: PgDatabase) -> None:
        super().__init__(db)  # type: ignore[arg-type]  # the read goes through the same fetchone
        self.pg = db

    async def remember(self, prompt: EditPrompt) -> None:
        now = utcnow()
        async with self.pg.transaction() as conn:
            await conn.execute(
                "INSERT INTO edit_prompts (platform, chat_id, message_id, button_id, user_id, created_at) "
                "VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (platform, chat_id, message_id) "
                "DO UPDATE SET button_id = EXCLUDED.button_id, user_id = EXCLUDED.user_id, "
                "created_at = EXCLUDED.created_at",
                prompt.platform,
                prompt.chat_id,
                prompt.message_id,
                prompt.button_id,
                prompt.user_id,
                now.isoformat(),
            )
            await conn.execute("DELETE FROM edit_prompts WHERE created_at < $1", (now - KEEP).isoformat())
