"""Which store the bot uses: SQLite in data_dir (the default) or PostgreSQL (`[storage] url`).

The composition root and the `imagebridge db` commands open the stores here and never look at the dialect.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import asyncpg
from pydantic import SecretStr

from bot.errors import ConfigError
from bot.settings import Settings
from storage import maintenance as sqlite_maintenance
from storage.accounts import SqliteAccountStore
from storage.db import Database
from storage.edit_prompts import SqliteEditPrompts
from storage.inbox import SqliteInbox
from storage.jobs import SqliteJobStore
from storage.lock import ProcessLock
from storage.maintenance import FileRemover
from storage.postgres import maintenance as pg_maintenance
from storage.postgres.account_signals import AccountSignals
from storage.postgres.accounts import PgAccountStore, PgUserSettings
from storage.postgres.db import PgDatabase
from storage.postgres.edit_prompts import PgEditPrompts
from storage.postgres.inbox import PgInbox
from storage.postgres.jobs import PgJobStore
from storage.postgres.lock import PgProcessLock
from storage.user_settings import SqliteUserSettings

log = logging.getLogger(__name__)

StoreDb = Database | PgDatabase
SQLITE_FILE = "imagebridge.sqlite3"


@dataclass
class Stores:
    """The repositories of one process, on one database."""

    db: StoreDb
    jobs: SqliteJobStore | PgJobStore
    accounts: SqliteAccountStore
    inbox: SqliteInbox | PgInbox
    user_settings: SqliteUserSettings
    lock: ProcessLock | PgProcessLock | None = None
    account_signals: asyncio.Task[None] | None = None  # PostgreSQL: other processes' settings changes

    async def close(self) -> None:
        if self.account_signals is not None:
            self.account_signals.cancel()
            await asyncio.gather(self.account_signals, return_exceptions=True)
        await self.db.close()
        if isinstance(self.lock, PgProcessLock):
            await self.lock.release()
        elif self.lock is not None:
            self.lock.release()


def sqlite_path(settings: Settings) -> Path:
    return settings.data_dir / SQLITE_FILE


def images_root(settings: Settings) -> Path:
    """Where image files go: `[storage] images_dir`, else data_dir/images. Rows keep absolute paths, so
    processes on several hosts share it when it is mounted at the same path on each."""
    return settings.storage.images_dir or settings.data_dir / "images"


async def open_database(settings: Settings, password: SecretStr | None = None, *, migrate: bool = True) -> StoreDb:
    """The configured database, migrated unless told not to."""
    url = settings.storage.url
    if url is None:
        return await Database.open(sqlite_path(settings), migrate=migrate)
    with _unreachable():
        return await PgDatabase.open(url, password, pool_size=settings.storage.pool_size, migrate=migrate)


@contextmanager
def _unreachable() -> Iterator[None]:
    """A server that does not answer or refuses us is a configuration problem, said in one line."""
    try:
        yield
    except (TimeoutError, OSError, asyncpg.PostgresError) as exc:
        raise ConfigError(f"storage.url: cannot open the PostgreSQL database ({type(exc).__name__}: {exc})") from exc


async def open_stores(settings: Settings, password: SecretStr | None = None) -> Stores:
    """Open the bot's stores. On SQLite this process must be the only bot on the database (storage/lock.py);
    on PostgreSQL several processes share it (their workers claim jobs: bot/shared_queue.py)."""
    if settings.storage.url is not None:
        pg = await open_database(settings, password)
        assert isinstance(pg, PgDatabase)
        accounts = PgAccountStore(pg)
        try:
            listening = await listen_for_changes(accounts, settings.storage.url, password)
        except BaseException:
            await pg.close()
            raise
        stores = Stores(pg, PgJobStore(pg), accounts, PgInbox(pg), PgUserSettings(pg))
        stores.account_signals = listening
        return stores
    lock = ProcessLock(sqlite_path(settings)).acquire()
    try:
        db = await Database.open(sqlite_path(settings))
    except BaseException:
        lock.release()
        raise
    return Stores(db, SqliteJobStore(db), SqliteAccountStore(db), SqliteInbox(db), SqliteUserSettings(db), lock)


async def listen_for_changes(
    accounts: PgAccountStore, url: SecretStr, password: SecretStr | None
) -> asyncio.Task[None]:
    """LISTEN for other processes' settings changes (in place before the first command), kept up by a task."""
    signals = accounts.signals = AccountSignals(accounts)
    with _unreachable():
        await signals.start(url, password)
    return asyncio.get_running_loop().create_task(signals.run(url, password), name="account-signals")


async def prune(db: StoreDb, files: FileRemover, older_than_days: int) -> int:
    """Finished, delivered jobs older than N days and their images go; returns the jobs removed."""
    if isinstance(db, PgDatabase):
        return await pg_maintenance.prune(db, files, older_than_days)
    return await sqlite_maintenance.prune(db, files, older_than_days)


async def backup(db: StoreDb, target: Path, *, folder: bool = False, password: SecretStr | None = None) -> Path:
    """SQLite: an online backup file; PostgreSQL: a pg_dump custom-format file. Returns the file written."""
    if isinstance(db, PgDatabase):
        secret = password.get_secret_value() if password is not None else None
        return await pg_maintenance.backup(db, target, folder=folder, password=secret)
    return await sqlite_maintenance.backup(db, target, folder=folder)


async def count_jobs_by_state(db: StoreDb) -> dict[str, int]:
    """How many job rows are in each state (the jobs-by-state gauge, `imagebridge db stats`)."""
    rows = await db.fetchall("SELECT state, COUNT(*) AS n FROM jobs GROUP BY state")
    return {str(row["state"]): int(row["n"]) for row in rows}


async def retention_loop(
    db: StoreDb,
    files: FileRemover,
    older_than_days: int,
    every_seconds: float = sqlite_maintenance.RETENTION_INTERVAL_SECONDS,
) -> None:
    """Prune now and then every few hours until cancelled (run as a task)."""
    while True:
        try:
            await prune(db, files, older_than_days)
        except Exception:
            log.exception("retention prune failed; will try again")
        await asyncio.sleep(every_seconds)


def edit_prompts(db: StoreDb) -> SqliteEditPrompts | PgEditPrompts:
    """The Edit button's prompts on the same database."""
    return PgEditPrompts(db) if isinstance(db, PgDatabase) else SqliteEditPrompts(db)
