"""The PostgreSQL connection pool: migrations from storage/schema.py, transactions, and `?` placeholders.

Reads written for SQLite (`?` placeholders) run unchanged: `fetchone`/`fetchall` number them `$1, $2, …`,
so a neutral query (maintenance, tests) needs no second copy.
"""

from __future__ import annotations

import logging
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
from pydantic import SecretStr

from storage.schema import all_migrations, statements

log = logging.getLogger(__name__)

QMARK = re.compile(r"\?")
MIGRATION_LOCK = 0x1B_0018  # pg_advisory_xact_lock key: one process migrates at a time
VERSION_TABLE = "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)"

Connection = Any  # asyncpg ships no type hints; its Connection is used through these names only
Record = Any


def numbered(sql: str) -> str:
    """`?` placeholders as PostgreSQL's `$1, $2, …` (no `?` may appear inside string literals)."""
    counter = iter(range(1, 10_000))
    return QMARK.sub(lambda _: f"${next(counter)}", sql)


class PgDatabase:
    """An asyncpg pool. Writes go through `transaction()`; PostgreSQL's own locks serialise them."""

    dialect = "postgres"

    def __init__(self, pool: Any, url: str) -> None:
        self.pool = pool
        self.url = url

    @classmethod
    async def open(
        cls, url: SecretStr, password: SecretStr | None = None, *, pool_size: int = 10, migrate: bool = True
    ) -> PgDatabase:
        """Connect (the password from the URL or the given secret) and migrate unless told not to."""
        dsn = url.get_secret_value()
        secret = password.get_secret_value() if password is not None else None
        pool = await asyncpg.create_pool(dsn, password=secret, min_size=1, max_size=pool_size)
        db = cls(pool, dsn)
        if migrate:
            await db.migrate()
        return db

    async def version(self) -> int:
        async with self.pool.acquire() as conn:
            exists = await conn.fetchval("SELECT to_regclass('schema_version') IS NOT NULL")
            if not exists:
                return 0
            return int(await conn.fetchval("SELECT COALESCE(MAX(version), 0) FROM schema_version"))

    async def migrate(self) -> list[int]:
        """Apply the migrations not yet applied, each in its own transaction; returns their numbers."""
        applied = []
        for migration in all_migrations():
            async with self.transaction() as conn:
                await conn.execute("SELECT pg_advisory_xact_lock($1)", MIGRATION_LOCK)
                await conn.execute(VERSION_TABLE)
                current = await conn.fetchval("SELECT COALESCE(MAX(version), 0) FROM schema_version")
                if migration.number <= current:
                    continue
                log.info("applying database migration %03d (PostgreSQL)", migration.number)
                for statement in statements(migration.postgres):
                    await conn.execute(statement)
                await conn.execute("DELETE FROM schema_version")
                await conn.execute("INSERT INTO schema_version (version) VALUES ($1)", migration.number)
                applied.append(migration.number)
        return applied

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Connection]:
        """A pooled connection inside BEGIN … COMMIT (ROLLBACK on any error)."""
        async with self.pool.acquire() as conn, conn.transaction():
            yield conn

    async def fetchall(self, sql: str, params: tuple[object, ...] = ()) -> list[Record]:
        async with self.pool.acquire() as conn:
            return list(await conn.fetch(numbered(sql), *params))

    async def fetchone(self, sql: str, params: tuple[object, ...] = ()) -> Record | None:
        async with self.pool.acquire() as conn:
            return await conn.fetchrow(numbered(sql), *params)

    async def close(self) -> None:
        await self.pool.close()
