"""`imagebridge db`: migrate, stats, backup, prune and import-sqlite, on SQLite or PostgreSQL alike.

stats and backup only read, so they work while the bot runs; migrate on SQLite, and import, refuse while a
bot runs on the database (storage/lock.py). Each returns the lines to print; a problem is a ConfigError.
"""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import SecretStr

from bot.errors import ConfigError
from bot.i18n import t
from bot.settings import Settings
from storage.db import Database
from storage.images import image_files
from storage.lock import ProcessLock
from storage.postgres.db import PgDatabase
from storage.postgres.importer import import_sqlite
from storage.postgres.lock import PgProcessLock
from storage.schema import latest_migration
from storage.stores import StoreDb, backup, count_jobs_by_state, open_database, prune, sqlite_path


async def db_command(
    action: str, path: str | None, days: int | None, settings: Settings, password: SecretStr | None
) -> list[str]:
    """Run one `imagebridge db` action; the lines it reports."""
    if action == "import-sqlite":
        return await _import(settings, path, password)
    file, lock = sqlite_path(settings), None
    if settings.storage.url is None and action != "migrate" and not file.is_file():
        raise ConfigError(  # opening would create (and migrate) a new, empty database
            f"no database at {file.resolve()}: run this from the bot's folder, or pass the bot's --config "
            "(its data_dir says where the database is)"
        )
    if settings.storage.url is None and action == "migrate":
        lock = ProcessLock(file).acquire()  # never change the schema under a running bot
    try:
        db = await open_database(settings, password, migrate=action == "prune")
        try:
            return await _on(db, action, path, days, settings, password)
        finally:
            await db.close()
    finally:
        if lock is not None:
            lock.release()


async def _on(
    db: StoreDb, action: str, path: str | None, days: int | None, settings: Settings, password: SecretStr | None
) -> list[str]:
    if action == "migrate":
        applied = await db.migrate()
        return [
            f"migrations applied: {', '.join(f'{n:03d}' for n in applied) or 'none (up to date)'}",
            f"schema version: {await db.version():03d}",
        ]
    if action == "stats":
        kind = "PostgreSQL" if isinstance(db, PgDatabase) else f"SQLite {sqlite_path(settings).resolve()}"
        counts = await count_jobs_by_state(db)
        return [
            f"database: {kind}, schema version {await db.version():03d} (this imagebridge: {latest_migration():03d})",
            "jobs: " + (", ".join(f"{state} {n}" for state, n in sorted(counts.items())) or "none"),
        ]
    if action == "backup":
        if not path:
            raise ConfigError("db backup: give the file or folder to write the backup to")
        folder = path.endswith(("/", os.sep))
        try:
            return [f"backed up to {await backup(db, Path(path), folder=folder, password=password)}"]
        except ValueError as exc:
            raise ConfigError(f"db backup: {exc}") from exc
    keep = days if days is not None else settings.retention_days
    if keep is None:
        raise ConfigError("db prune: give --days N or set retention_days in the config")
    files = image_files(settings)
    try:
        removed = await prune(db, files, keep)
    finally:
        await files.aclose()
    return [t("en", "cli.pruned", count=removed, days=t("en", "cli.days", count=keep))]


async def _import(settings: Settings, path: str | None, password: SecretStr | None) -> list[str]:
    """Copy a SQLite database (no bot running on it) into the configured, empty PostgreSQL one."""
    if settings.storage.url is None:
        raise ConfigError("db import-sqlite: set [storage] url (or IMAGEBRIDGE_STORAGE__URL) to the target database")
    source_file = Path(path) if path else sqlite_path(settings)
    if not source_file.is_file():
        raise ConfigError(f"db import-sqlite: no SQLite database at {source_file.resolve()}")
    source_lock = ProcessLock(source_file).acquire()
    target_lock = await PgProcessLock().acquire(settings.storage.url, password)
    try:
        source = await Database.open(source_file, migrate=False)
        target = await open_database(settings, password)
        try:
            assert isinstance(target, PgDatabase)
            copied = await import_sqlite(source, target)
        except ValueError as exc:
            raise ConfigError(f"db import-sqlite: {exc}") from exc
        finally:
            await source.close()
            await target.close()
    finally:
        await target_lock.release()
        source_lock.release()
    return [f"imported from {source_file.resolve()}: " + ", ".join(f"{table} {n}" for table, n in copied.items())]
