"""The inbox store on a real SQLite file and a real PostgreSQL: repeats, settling, replay order, forgetting old keys."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest
from pydantic import SecretStr

from bot.models import utcnow
from storage import inbox as inbox_module
from storage.db import Database
from storage.inbox import SqliteInbox
from storage.postgres.db import PgDatabase, numbered
from storage.postgres.inbox import PgInbox
from storage.stores import StoreDb
from tests.postgres_support import drop_database, fresh_database


@pytest.fixture(params=["sqlite", "postgres"])
async def db(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[StoreDb]:
    if request.param == "sqlite":
        database: StoreDb = await Database.open(tmp_path / "inbox.sqlite3")
        yield database
        await database.close()
        return
    server = request.getfixturevalue("postgres_server")
    url = await fresh_database(server)
    database = await PgDatabase.open(SecretStr(url), pool_size=2)
    yield database
    await database.close()
    await drop_database(server, url)


def open_inbox(db: StoreDb) -> SqliteInbox | PgInbox:
    return PgInbox(db) if isinstance(db, PgDatabase) else SqliteInbox(db)


async def execute(db: StoreDb, sql: str, *params: object) -> None:
    async with db.transaction() as conn:
        if isinstance(db, PgDatabase):
            await conn.execute(numbered(sql), *params)
        else:
            await conn.execute(sql, params)


async def test_a_message_is_recorded_once_and_replayed_in_order_until_settled(db: StoreDb) -> None:
    inbox = open_inbox(db)
    assert await inbox.record("telegram", "-1", "7", '{"a": 1}')
    assert await inbox.record("telegram", "-1", "8", '{"a": 2}')
    assert not await inbox.record("telegram", "-1", "7", '{"a": 1}'), "the same (chat, message) is a repeat"
    assert await inbox.record("telegram", "-2", "7", '{"a": 3}'), "message ids are per chat"
    keys = [(e.chat_id, e.message_id) for e in await inbox.pending("telegram")]
    assert keys == [("-1", "7"), ("-1", "8"), ("-2", "7")]
    await inbox.settle("telegram", "-1", "7")
    assert [e.message_id for e in await inbox.pending("telegram")] == ["8", "7"]
    assert not await inbox.record("telegram", "-1", "7", '{"a": 1}'), "a settled message is still a repeat"
    assert await inbox.pending("discord") == []


async def test_old_settled_keys_are_forgotten_pending_ones_never(db: StoreDb, monkeypatch: pytest.MonkeyPatch) -> None:
    inbox = open_inbox(db)
    for message in ("1", "2", "3"):
        await inbox.record("telegram", "-1", message, "{}")
    await inbox.settle("telegram", "-1", "1")
    old = utcnow() - timedelta(days=3)
    await execute(
        db,
        "UPDATE inbox SET received_at = ? WHERE message_id IN ('1', '2')",
        old if isinstance(db, PgDatabase) else old.isoformat(),
    )
    monkeypatch.setattr(inbox_module, "PRUNE_EVERY", 1)
    await inbox.settle("telegram", "-1", "3")
    rows = await db.fetchall("SELECT message_id, state FROM inbox ORDER BY message_id")
    assert [(r["message_id"], r["state"]) for r in rows] == [("2", "pending"), ("3", "settled")]
