"""Online backup and retention on a real database with rows made by the real engine."""

from __future__ import annotations

import asyncio
import sqlite3
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from bot.app import App
from bot.models import DeliveryState, Job, JobState, utcnow
from commands.dispatch import dispatch_text
from storage.maintenance import backup
from storage.postgres.db import PgDatabase, numbered
from storage.stores import count_jobs_by_state, prune
from tests.conftest import AppFactory, invocation
from tests.fakes import FakeBackend


async def finished_job(app: App, prompt: str) -> str:
    reply = await dispatch_text(app.services, invocation(), f"/imagine {prompt}")
    assert reply is not None and reply.job_id
    async with asyncio.timeout(5):
        await app.engine.finished_event(reply.job_id).wait()
    return reply.job_id


async def execute(app: App, sql: str, *params: object) -> None:
    """One write on either store (PostgreSQL: `$n` placeholders, datetimes as they are)."""
    async with app.db.transaction() as conn:
        if isinstance(app.db, PgDatabase):
            await conn.execute(numbered(sql), *params)
        else:
            await conn.execute(sql, tuple(p.isoformat() if isinstance(p, datetime) else p for p in params))


async def age(app: App, job_id: str, days: int) -> None:
    """Pretend the job (and its images) finished `days` ago."""
    when = utcnow() - timedelta(days=days)
    await execute(app, "UPDATE jobs SET created_at = ?, finished_at = ? WHERE id = ?", when, when, job_id)
    await execute(app, "UPDATE images SET created_at = ? WHERE job_id = ?", when, job_id)


both_stores = pytest.mark.parametrize("store_kind", ["sqlite", "postgres"])  # overrides the fixture
sqlite_only = pytest.mark.parametrize("store_kind", ["sqlite"])  # SQLite's backup API (pg_dump: test_pg_store_cli)


def rows(path: Path, sql: str) -> list[tuple[object, ...]]:
    connection = sqlite3.connect(path)
    try:
        return connection.execute(sql).fetchall()
    finally:
        connection.close()


@sqlite_only
async def test_backup_is_a_consistent_copy_while_the_bot_runs(app_factory: AppFactory, tmp_path: Path) -> None:
    app = await app_factory()
    job_id = await finished_job(app, "a lighthouse")
    written = await backup(app.db, tmp_path / "backups" / "copy.sqlite3")
    assert written == tmp_path / "backups" / "copy.sqlite3"
    assert rows(written, "SELECT id, state FROM jobs") == [(job_id, "succeeded")]
    assert rows(written, "PRAGMA integrity_check") == [("ok",)]
    assert not list(written.parent.glob("*.part"))
    # The bot keeps working after (and the live database still takes writes).
    await finished_job(app, "a harbour")
    assert len(rows(written, "SELECT id FROM jobs")) == 1


@sqlite_only
async def test_backup_into_a_folder_gets_a_dated_name(app_factory: AppFactory, tmp_path: Path) -> None:
    app = await app_factory()
    folder = tmp_path / "backups"
    folder.mkdir()
    written = await backup(app.db, folder)
    assert written.parent == folder and written.name.startswith("imagebridge-") and written.suffix == ".sqlite3"
    assert rows(written, "PRAGMA user_version")[0][0] >= 1


@sqlite_only
async def test_backup_refuses_to_overwrite_the_live_database(app_factory: AppFactory) -> None:
    app = await app_factory()
    with pytest.raises(ValueError, match="live database"):
        await backup(app.db, app.settings.data_dir / "imagebridge.sqlite3")


@both_stores
async def test_prune_removes_old_delivered_jobs_with_their_files(app_factory: AppFactory) -> None:
    app = await app_factory()
    old = await finished_job(app, "old")
    recent = await finished_job(app, "recent")
    await age(app, old, days=40)
    old_files = [Path(image.path) for image in await app.services.store.images(old)]
    recent_files = [Path(image.path) for image in await app.services.store.images(recent)]
    assert old_files and all(path.is_file() for path in old_files)

    assert await prune(app.db, app.services.files, older_than_days=30) == 1

    assert await app.services.store.get(old) is None
    assert await app.services.store.images(old) == []
    assert not any(path.exists() for path in old_files)
    assert await app.services.store.get(recent) is not None
    assert all(path.is_file() for path in recent_files)
    assert await prune(app.db, app.services.files, older_than_days=30) == 0


@both_stores
async def test_prune_keeps_live_and_undelivered_jobs(app_factory: AppFactory) -> None:
    backend = FakeBackend(hold=True)
    app = await app_factory(backend=backend)
    undelivered = await finished_job_then_undeliver(app, backend)
    running = await submit_and_wait_started(app, backend)
    await age(app, undelivered, days=90)
    await age(app, running, days=90)
    assert await prune(app.db, app.services.files, older_than_days=1) == 0
    assert await app.services.store.get(undelivered) is not None
    assert await app.services.store.get(running) is not None
    counts = await count_jobs_by_state(app.db)
    assert counts == {"succeeded": 1, "running": 1}


async def finished_job_then_undeliver(app: App, backend: FakeBackend) -> str:
    backend.release.set()
    job_id = await finished_job(app, "undelivered")
    await app.services.store.set_delivery(job_id, DeliveryState.PENDING)
    backend.release.clear()
    backend.started.clear()
    return job_id


async def submit_and_wait_started(app: App, backend: FakeBackend) -> str:
    reply = await dispatch_text(app.services, invocation(), "/imagine running")
    assert reply is not None and reply.job_id
    async with asyncio.timeout(5):
        await backend.started.wait()
        # The worker writes "running" beside the request (bot/worker.py): on a pool of connections the row may
        # lag the backend by a moment, so wait for that write itself.
        saving = [task for task in asyncio.all_tasks() if task.get_name() == f"running-{reply.job_id}"]
        await asyncio.gather(*saving)
    job = await app.services.store.get(reply.job_id)
    assert job is not None and job.state is JobState.RUNNING
    return reply.job_id


@both_stores
async def test_prune_removes_old_unreferenced_source_images(app_factory: AppFactory) -> None:
    app = await app_factory()
    path = await app.services.files.write("sources", "old.png", b"not really a png")
    await execute(
        app,
        "INSERT INTO images (id, job_id, kind, idx, path, sha256, width, height, seed, infotext, created_at) "
        "VALUES ('src-old', NULL, 'source', 0, ?, 'x', 1, 1, NULL, '', ?)",
        path,
        utcnow() - timedelta(days=10),
    )
    assert await prune(app.db, app.services.files, older_than_days=5) == 0
    assert await app.services.store.image("src-old") is None
    assert not await asyncio.to_thread(Path(path).exists)


@both_stores
async def test_prune_needs_at_least_one_day(app_factory: AppFactory) -> None:
    app = await app_factory()
    with pytest.raises(ValueError, match="at least 1"):
        await prune(app.db, app.services.files, older_than_days=0)


@both_stores
async def test_prune_keeps_old_sources_an_edit_refers_to(app_factory: AppFactory) -> None:
    app = await app_factory()
    template = await app.services.store.get(await finished_job(app, "template"))
    assert template is not None
    old = utcnow() - timedelta(days=10)
    for name in ("kept", "gone"):
        path = await app.services.files.write("sources", f"{name}.png", b"not really a png")
        await execute(
            app,
            "INSERT INTO images (id, job_id, kind, idx, path, sha256, width, height, seed, infotext, created_at) "
            "VALUES (?, NULL, 'source', 0, ?, 'x', 1, 1, NULL, '', ?)",
            f"src-{name}",
            path,
            old,
        )
    edit = template.request.model_copy(update={"kind": "edit", "reference_image_ids": ("src-other", "src-kept")})
    await app.services.store.create(Job(request=edit, destination=template.destination), None)
    await prune(app.db, app.services.files, older_than_days=5)
    assert await app.services.store.image("src-kept") is not None, "an edit still refers to it"
    assert await app.services.store.image("src-gone") is None
