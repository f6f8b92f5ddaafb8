"""The Edit button's prompts on SQLite (bot/edit_prompts.py), kept a week."""

from __future__ import annotations

from datetime import timedelta

from bot.edit_prompts import EditPrompt
from bot.models import utcnow
from storage.db import Database

KEEP = timedelta(days=7)  # an unanswered prompt is forgotten after this


class SqliteEditPrompts:
    """EditPrompts keyed by (platform, chat, message)."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def remember(self, prompt: EditPrompt) -> None:
        now = utcnow()
        async with self.db.transaction() as conn:
            await conn.execute(
                "INSERT OR REPLACE INTO edit_prompts (platform, chat_id, message_id, button_id, user_id, created_at) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (prompt.platform, prompt.chat_id, prompt.message_id, prompt.button_id, prompt.user_id, now.isoformat()),
            )
            await conn.execute("DELETE FROM edit_prompts WHERE created_at < ?", ((now - KEEP).isoformat(),))

    async def recall(self, platform: str, chat_id: str, message_id: str) -> EditPrompt | None:
        row = await self.db.fetchone(
            "SELECT button_id, user_id FROM edit_prompts WHERE platform = ? AND chat_id = ? AND message_id = ?",
            (platform, chat_id, message_id),
        )
        if row is None:
            return None
        return EditPrompt(platform, chat_id, message_id, str(row["button_id"]), str(row["user_id"]))
