"""Upkeep on PostgreSQL: retention (old images and finished jobs) and backups with pg_dump."""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlsplit

from bot.models import utcnow
from storage.maintenance import FileRemover
from storage.postgres.db import PgDatabase

log = logging.getLogger(__name__)

FINAL_STATES = ["succeeded", "failed", "cancelled"]
OLD_JOBS = (
    "SELECT id FROM jobs WHERE state = ANY($1::text[]) AND delivery != 'pending' AND finished_at IS NOT NULL "
    "AND finished_at < $2 FOR UPDATE"
)
OLD_SOURCES = (  # uploads no job refers to: as img2img source, or among an edit's references
    "DELETE FROM images i WHERE i.kind = 'source' AND i.created_at < $1 AND NOT EXISTS "
    "(SELECT 1 FROM jobs j WHERE j.request->>'source_image_id' = i.id "
    "OR j.request->'reference_image_ids' @> jsonb_build_array(i.id)) RETURNING path"
)


async def prune(db: PgDatabase, files: FileRemover, older_than_days: int) -> int:
    """As storage.maintenance.prune: finished, delivered jobs older than N days go, with their images."""
    if older_than_days < 1:
        raise ValueError("older_than_days must be at least 1")
    cutoff = utcnow() - timedelta(days=older_than_days)
    async with db.transaction() as conn:
        gone = [row["id"] for row in await conn.fetch(OLD_JOBS, FINAL_STATES, cutoff)]
        # The image rows first: deleting the jobs would cascade to them before their paths were read.
        deleted = await conn.fetch("DELETE FROM images WHERE job_id = ANY($1::text[]) RETURNING path", gone)
        paths = [row["path"] for row in deleted]
        await conn.execute("DELETE FROM jobs WHERE id = ANY($1::text[])", gone)
        sources = [row["path"] for row in await conn.fetch(OLD_SOURCES, cutoff)]
    for path in [*paths, *sources]:  # after the commit: a crash in between leaves a stray file, never a row
        await files.delete(path)
    if gone or sources:
        log.info("retention: pruned %d jobs and %d image files", len(gone), len(paths) + len(sources))
    return len(gone)


def _dated(folder: Path) -> Path:
    stem = f"imagebridge-{utcnow():%Y%m%d-%H%M%S}"
    target, number = folder / f"{stem}.pgdump", 1
    while target.exists():
        target, number = folder / f"{stem}-{number}.pgdump", number + 1
    return target


def _new_file(target: Path, folder: bool) -> Path:
    """The file to write: `target`, or a dated one in it when it is a folder; never an existing file."""
    if folder or target.is_dir():
        target.mkdir(parents=True, exist_ok=True)
        target = _dated(target)
    if target.exists():
        raise ValueError(f"{target} already exists; give a new file name, or a folder for dated backups")
    target.parent.mkdir(parents=True, exist_ok=True)
    return target


async def backup(db: PgDatabase, target: Path, *, folder: bool = False, password: str | None = None) -> Path:
    """`pg_dump --format=custom` of the database to a new file (restore with pg_restore); returns the file.

    pg_dump must be installed where this runs (Debian: postgresql-client) and no older than the server.
    """
    pg_dump = shutil.which("pg_dump")
    if pg_dump is None:
        raise ValueError("pg_dump is not installed here (Debian: apt-get install postgresql-client)")
    target = await asyncio.to_thread(_new_file, target, folder)
    partial = target.with_name(target.name + ".part")
    env = dict(os.environ)
    url_password = urlsplit(db.url).password
    if password or url_password:
        env["PGPASSWORD"] = password or url_password or ""  # not on the command line, where `ps` would show it
    dsn = db.url.replace(f":{url_password}@", "@") if url_password else db.url
    process = await asyncio.create_subprocess_exec(
        pg_dump, "--format=custom", f"--file={partial}", f"--dbname={dsn}",
        env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    _, errors = await process.communicate()
    if process.returncode != 0:
        await asyncio.to_thread(partial.unlink, True)
        raise ValueError(f"pg_dump failed: {errors.decode(errors='replace').strip()}")
    await asyncio.to_thread(partial.replace, target)
    log.info("database backed up to %s", target)
    return target
