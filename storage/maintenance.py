"""Database upkeep: online backups, retention (old images and finished jobs) and job counts for metrics."""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from datetime import timedelta
from pathlib import Path
from typing import Protocol

from bot.models import utcnow
from storage.db import Database

log = logging.getLogger(__name__)

FINAL_STATES = ("succeeded", "failed", "cancelled")
RETENTION_INTERVAL_SECONDS = 6 * 3600.0


class FileRemover(Protocol):
    """The part of ImageFiles that pruning needs."""

    async def delete(self, path: str) -> None:
        """Remove a file if it exists."""
        ...


async def database_path(db: Database) -> Path:
    """The file behind the open connection (from SQLite itself, so it cannot drift from what is open)."""
    row = await db.fetchone("PRAGMA database_list")
    if row is None or not row["file"]:
        raise ValueError("the database is not backed by a file, so it cannot be backed up")
    return Path(row["file"])


async def backup(db: Database, target: Path, *, folder: bool = False) -> Path:
    """Copy the live database to `target` with SQLite's online backup; returns the file written.

    `target` is a new file, or a folder (when `folder` is true or it already is one) that gets a dated
    file per backup. An existing file is never overwritten. A second, read-only connection takes the copy in
    a thread, so the bot keeps writing meanwhile (WAL); the copy is a consistent snapshot of what was
    committed. Written to `<target>.part` first, then renamed.
    """
    source = await database_path(db)
    written = await asyncio.to_thread(_copy, source, target, folder)
    log.info("database backed up to %s", written)
    return written


def _dated(folder: Path) -> Path:
    """A new file name in `folder` from the current time; a suffix when two backups share a second."""
    stem = f"imagebridge-{utcnow():%Y%m%d-%H%M%S}"
    target = folder / f"{stem}.sqlite3"
    number = 1
    while target.exists():
        target = folder / f"{stem}-{number}.sqlite3"
        number += 1
    return target


def _copy(source: Path, target: Path, folder: bool) -> Path:
    if folder or target.is_dir():
        target.mkdir(parents=True, exist_ok=True)
        target = _dated(target)
    if target.resolve() == source.resolve():
        raise ValueError(f"backup target {target} is the live database")
    if target.exists():
        raise ValueError(f"{target} already exists; give a new file name, or a folder for dated backups")
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + ".part")
    partial.unlink(missing_ok=True)
    reader = sqlite3.connect(f"{source.resolve().as_uri()}?mode=ro", uri=True)
    try:
        writer = sqlite3.connect(partial)
        try:
            reader.backup(writer)
        finally:
            writer.close()
    finally:
        reader.close()
    partial.replace(target)
    return target


async def prune(db: Database, files: FileRemover, older_than_days: int) -> int:
    """Delete finished, delivered jobs (and their image files and rows) older than N days; returns jobs removed.

    Uploaded source images older than N days that no remaining job refers to go too. Queued, running and
    undelivered jobs are never touched; the quota ledger is kept (it is small and /stats reads it).
    """
    if older_than_days < 1:
        raise ValueError("older_than_days must be at least 1")
    cutoff = (utcnow() - timedelta(days=older_than_days)).isoformat()
    marks = ", ".join("?" * len(FINAL_STATES))
    old_jobs = [
        row["id"]
        for row in await db.fetchall(
            f"SELECT id FROM jobs WHERE state IN ({marks}) AND delivery != 'pending' AND finished_at IS NOT NULL "
            "AND finished_at < ?",
            (*FINAL_STATES, cutoff),
        )
    ]
    paths: list[str] = []
    async with db.transaction() as conn:
        for job_id in old_jobs:
            async with conn.execute("SELECT path FROM images WHERE job_id = ?", (job_id,)) as cursor:
                paths.extend(row["path"] for row in await cursor.fetchall())
            await conn.execute("DELETE FROM images WHERE job_id = ?", (job_id,))
            await conn.execute("DELETE FROM jobs WHERE id = ?", (job_id,))
        async with conn.execute(
            "SELECT id, path FROM images WHERE kind = 'source' AND created_at < ? AND id NOT IN "
            "(SELECT json_extract(request, '$.source_image_id') FROM jobs "
            "WHERE json_extract(request, '$.source_image_id') IS NOT NULL) AND id NOT IN "
            "(SELECT refs.value FROM jobs, json_each(jobs.request, '$.reference_image_ids') AS refs)",  # edits
            (cutoff,),
        ) as cursor:
            sources = [(row["id"], row["path"]) for row in await cursor.fetchall()]
        for image_id, path in sources:
            await conn.execute("DELETE FROM images WHERE id = ?", (image_id,))
            paths.append(path)
    # Files go after the rows are committed: a crash in between leaves a stray file, never a dangling row.
    for path in paths:
        await files.delete(path)
    if old_jobs or sources:
        log.info(
            "retention: pruned %d jobs and %d image files older than %d days",
            len(old_jobs),
            len(paths),
            older_than_days,
        )
    return len(old_jobs)


async def retention_loop(
    db: Database, files: FileRemover, older_than_days: int, every_seconds: float = RETENTION_INTERVAL_SECONDS
) -> None:
    """Prune now and then every few hours until cancelled (run as a task; stop with bot.lifecycle.stop_tasks)."""
    while True:
        try:
            await prune(db, files, older_than_days)
        except Exception:
            log.exception("retention prune failed; will try again")
        await asyncio.sleep(every_seconds)


async def count_jobs_by_state(db: Database) -> dict[str, int]:
    """How many job rows are in each state (for the jobs-by-state gauge)."""
    rows = await db.fetchall("SELECT state, COUNT(*) AS n FROM jobs GROUP BY state")
    return {row["state"]: int(row["n"]) for row in rows}
