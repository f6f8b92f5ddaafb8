"""The web gallery's store on PostgreSQL: SqliteWebStore's queries, with PostgreSQL's spelling where it differs."""

from __future__ import annotations

from datetime import datetime

from storage.postgres.db import PgDatabase
from storage.web import KEEP_EXPIRED, SignIn, SqliteWebStore, token_hash


class PgWebStore(SqliteWebStore):
    """Sign-in links, gallery pages, rights and usage on PostgreSQL (made by `SqliteWebStore(pg_database)`)."""

    PROMPT = "j.request->>'user_prompt'"
    USER_NAME = "j.destination->>'user_name'"
    ROWID = "j.seq"
    SHARED = "NOT COALESCE((j.destination->>'private')::boolean, FALSE)"

    def __init__(self, db: PgDatabase) -> None:
        super().__init__(db)  # type: ignore[arg-type]  # the reads share fetchone/fetchall
        self.pg = db

    def _when(self, created: str) -> object:
        return datetime.fromisoformat(created)  # timestamptz compares with a datetime, not text

    async def issue(self, token: str, who: SignIn, expires_at: datetime) -> None:
        async with self.pg.transaction() as conn:
            await conn.execute(
                "INSERT INTO web_tokens (token_hash, platform, user_id, user_name, server_id, expires_at) "
                "VALUES ($1, $2, $3, $4, $5, $6)",
                token_hash(token),
                who.platform,
                who.user_id,
                who.user_name,
                who.server_id,
                expires_at.isoformat(),
            )
            await conn.execute(
                "INSERT INTO web_members (platform, user_id, server_id) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
                who.platform,
                who.user_id,
                who.server_id,
            )
            # Links long past their expiry are of no use, even as a record: keep the table small.
            await conn.execute("DELETE FROM web_tokens WHERE expires_at < $1", (expires_at - KEEP_EXPIRED).isoformat())

    async def redeem(self, token: str, now: datetime) -> SignIn | None:
        async with self.pg.transaction() as conn:
            row = await conn.fetchrow(
                "UPDATE web_tokens SET used_at = $1 WHERE token_hash = $2 AND used_at IS NULL AND expires_at > $1 "
                "RETURNING platform, user_id, user_name, server_id",
                now.isoformat(),
                token_hash(token),
            )
        return SignIn(row[0], row[1], row[2], row[3]) if row else None
