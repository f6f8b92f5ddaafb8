"""Per-user settings (/settings) on SQLite, one row per (platform, server, user)."""

from __future__ import annotations

from bot.models import utcnow
from bot.ports import UserPrefs
from storage.db import Database

FIELDS = ("preset", "aspect", "steps", "negative", "private", "language")


class SqliteUserSettings:
    """The user_settings table (migration 014)."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def get(self, platform: str, server_id: str, user_id: str) -> UserPrefs:
        row = await self.db.fetchone(
            f"SELECT {', '.join(FIELDS)} FROM user_settings WHERE platform = ? AND server_id = ? AND user_id = ?",
            (platform, server_id, user_id),
        )
        if row is None:
            return UserPrefs(platform=platform, server_id=server_id, user_id=user_id)
        return UserPrefs(
            platform=platform,
            server_id=server_id,
            user_id=user_id,
            preset=row["preset"],
            aspect=row["aspect"],
            steps=row["steps"],
            negative=row["negative"],
            private=bool(row["private"]),
            language=row["language"],
        )

    async def save(self, prefs: UserPrefs) -> None:
        async with self.db.transaction() as conn:
            await conn.execute(
                f"INSERT OR REPLACE INTO user_settings (platform, server_id, user_id, {', '.join(FIELDS)}, updated_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    prefs.platform,
                    prefs.server_id,
                    prefs.user_id,
                    prefs.preset,
                    prefs.aspect,
                    prefs.steps,
                    prefs.negative,
                    int(prefs.private),
                    prefs.language,
                    utcnow().isoformat(),
                ),
            )
