"""Users, per-server settings and per-user settings on PostgreSQL (the same caches as the SQLite store)."""

from __future__ import annotations

import json
from dataclasses import asdict

from bot.models import utcnow
from bot.ports import ServerSettings, UserPrefs, UserRecord
from storage.accounts import SqliteAccountStore
from storage.postgres.account_signals import NOTIFY, AccountSignals, notice
from storage.postgres.db import PgDatabase
from storage.user_settings import FIELDS, SqliteUserSettings


class PgAccountStore(SqliteAccountStore):
    """AccountStore on PostgreSQL: the SQLite store's caches and neutral reads, PostgreSQL's upserts.

    The caches are per process; a save announces its key with NOTIFY and every process drops it from its
    caches (storage/postgres/account_signals.py), so another process's next command reads the change.
    """

    def __init__(self, db: PgDatabase) -> None:
        super().__init__(db)  # type: ignore[arg-type]  # reads go through the same fetchone/fetchall
        self.pg = db
        self.signals: AccountSignals | None = None  # set by storage/stores.py when it listens

    async def save_user(self, record: UserRecord) -> None:
        self._users[(record.platform, record.user_id)] = record.copy()
        async with self.pg.transaction() as conn:
            await conn.execute(
                "INSERT INTO users (platform, user_id, banned, role, daily_limit) VALUES ($1, $2, $3, $4, $5) "
                "ON CONFLICT (platform, user_id) DO UPDATE SET banned = EXCLUDED.banned, role = EXCLUDED.role, "
                "daily_limit = EXCLUDED.daily_limit",
                record.platform,
                record.user_id,
                record.banned,
                record.role,
                record.daily_limit,
            )
            await conn.execute(NOTIFY, notice("user", record.platform, record.user_id))

    async def save_server(self, settings: ServerSettings) -> None:
        self._servers[(settings.platform, settings.server_id)] = settings.copy()
        async with self.pg.transaction() as conn:
            await conn.execute(
                "INSERT INTO server_settings (platform, server_id, settings) VALUES ($1, $2, $3) "
                "ON CONFLICT (platform, server_id) DO UPDATE SET settings = EXCLUDED.settings",
                settings.platform,
                settings.server_id,
                json.dumps(asdict(settings)),
            )
            await conn.execute(NOTIFY, notice("server", settings.platform, settings.server_id))

    async def paused_servers(self) -> list[str]:
        rows = await self.pg.fetchall(
            "SELECT platform, server_id FROM server_settings WHERE COALESCE((settings->>'paused')::boolean, FALSE)"
        )
        return [f"{row['platform']}:{row['server_id']}" for row in rows]


class PgUserSettings(SqliteUserSettings):
    """UserSettingsStore on PostgreSQL: the neutral read, an upsert for the write."""

    def __init__(self, db: PgDatabase) -> None:
        super().__init__(db)  # type: ignore[arg-type]
        self.pg = db

    async def save(self, prefs: UserPrefs) -> None:
        updates = ", ".join(f"{field} = EXCLUDED.{field}" for field in (*FIELDS, "updated_at"))
        async with self.pg.transaction() as conn:
            await conn.execute(
                f"INSERT INTO user_settings (platform, server_id, user_id, {', '.join(FIELDS)}, updated_at) "
                "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) "
                f"ON CONFLICT (platform, server_id, user_id) DO UPDATE SET {updates}",
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
            )
