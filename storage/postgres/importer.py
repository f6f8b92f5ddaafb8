"""Move to PostgreSQL keeping the history: copy a SQLite database's rows into an empty PostgreSQL one.

Column types follow the PostgreSQL table (ISO text becomes timestamptz, 0/1 becomes boolean, JSON text
becomes jsonb); rows go in SQLite's rowid order, so insertion order (`seq`) is kept. Recent platform
sends are not copied (they only pace the first minutes after a start); the fair-share ledger starts level.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from storage.db import Database
from storage.postgres.db import Connection, PgDatabase
from storage.schema import latest_migration

log = logging.getLogger(__name__)

# Parents before children (images and quota rows name their job).
TABLES = (
    "jobs",
    "images",
    "quota_ledger",
    "users",
    "server_settings",
    "timings",
    "inbox",
    "web_tokens",
    "web_members",
    "user_settings",
    "edit_prompts",
    "drained_backends",
)


def _converter(data_type: str) -> Any:
    if data_type == "timestamp with time zone":
        return lambda value: datetime.fromisoformat(value) if isinstance(value, str) and value else value
    if data_type == "boolean":
        return lambda value: None if value is None else bool(value)
    return lambda value: value


async def _columns(conn: Connection, table: str) -> dict[str, str]:
    rows = await conn.fetch(
        "SELECT column_name, data_type FROM information_schema.columns WHERE table_schema = 'public' "
        "AND table_name = $1",
        table,
    )
    return {row["column_name"]: row["data_type"] for row in rows}


async def import_sqlite(source: Database, target: PgDatabase) -> dict[str, int]:
    """Copy every table; returns rows copied per table. Refuses an old source schema or a used target."""
    version = await source.version()
    if version < latest_migration():
        raise ValueError(
            f"the SQLite database is at migration {version:03d}, this imagebridge at {latest_migration():03d}: "
            "run `imagebridge db migrate` on it first (with its SQLite config)"
        )
    copied: dict[str, int] = {}
    async with target.transaction() as conn:
        if await conn.fetchval("SELECT EXISTS (SELECT 1 FROM jobs)"):
            raise ValueError("the PostgreSQL database already holds jobs: import into a new, empty database")
        for table in TABLES:
            types = await _columns(conn, table)
            rows = await source.fetchall(f"SELECT * FROM {table} ORDER BY rowid")
            if not rows:
                copied[table] = 0
                continue
            present = rows[0].keys()  # sqlite3.Row: iterating it gives values, keys() the column names
            names = [name for name in present if name in types]
            convert = [_converter(types[name]) for name in names]
            records = [tuple(fix(row[name]) for fix, name in zip(convert, names, strict=True)) for row in rows]
            marks = ", ".join(f"${n + 1}" for n in range(len(names)))
            await conn.executemany(f"INSERT INTO {table} ({', '.join(names)}) VALUES ({marks})", records)
            copied[table] = len(records)
    log.info("imported from SQLite: %s", ", ".join(f"{table} {count}" for table, count in copied.items()))
    return copied
