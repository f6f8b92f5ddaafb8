"""The PostgreSQL store as users meet it: `[storage] url`, one bot per database for now, `imagebridge db`
migrate/stats/backup/prune, and a database password that never reaches the config file or a log line."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from bot.app import build_app
from bot.errors import ConfigError
from bot.logs import redact
from bot.settings import load_settings
from bot.shared_queue import SharedEngine
from storage.schema import latest_migration
from tests.conftest import make_settings
from tests.fakes import FakeBackend, RecordingOutbound
from tests.postgres_support import PostgresServer, drop_database, free_port

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
async def empty_url(postgres_server: PostgresServer) -> AsyncIterator[str]:
    """A new database with no schema at all (not copied from the migrated template)."""
    name = f"empty{os.getpid()}"
    admin = await asyncpg.connect(postgres_server.url())
    try:
        await admin.execute(f"CREATE DATABASE {name}")
    finally:
        await admin.close()
    url = postgres_server.url(name)
    yield url
    await drop_database(postgres_server, url)


def cli(config: Path, url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "PYTHONPATH": str(ROOT), "IMAGEBRIDGE_STORAGE__URL": url}
    return subprocess.run(
        [sys.executable, "-m", "bot.cli", "--config", str(config), "db", *args],
        capture_output=True, text=True, timeout=120, check=False, env=env, cwd=config.parent,
    )  # fmt: skip


async def test_db_commands_on_postgresql(tmp_path: Path, empty_url: str) -> None:
    config = tmp_path / "imagebridge.toml"
    config.write_text(f'data_dir = "{tmp_path / "data"}"\n', encoding="utf-8")
    migrated = await asyncio.to_thread(cli, config, empty_url, "migrate")
    assert migrated.returncode == 0, migrated.stderr
    assert (
        f"{latest_migration():03d}\nschema version: {latest_migration():03d}" in migrated.stdout
        and "001, 002" in migrated.stdout
    )
    again = await asyncio.to_thread(cli, config, empty_url, "migrate")
    assert "none (up to date)" in again.stdout, again.stdout + again.stderr
    stats = await asyncio.to_thread(cli, config, empty_url, "stats")
    assert f"database: PostgreSQL, schema version {latest_migration():03d}" in stats.stdout, stats.stderr
    assert "jobs: none" in stats.stdout
    pruned = await asyncio.to_thread(cli, config, empty_url, "prune", "--days", "3")
    assert pruned.returncode == 0 and "pruned 0 finished jobs older than 3 days" in pruned.stdout, pruned.stderr
    if shutil.which("pg_dump") is None:
        return
    backup = await asyncio.to_thread(cli, config, empty_url, "backup", str(tmp_path / "dumps") + "/")
    assert backup.returncode == 0, backup.stderr
    written = next((tmp_path / "dumps").glob("imagebridge-*.pgdump"))
    listing = await asyncio.to_thread(
        subprocess.run, ["pg_restore", "--list", str(written)], capture_output=True, text=True, check=False
    )
    assert "TABLE public jobs" in listing.stdout and "fair_flows" in listing.stdout, listing.stderr


async def test_several_bots_share_one_postgresql_database(
    tmp_path: Path, storage: dict[str, object], store_kind: str
) -> None:
    settings = make_settings(tmp_path / "data", **storage)
    first = await build_app(settings, [RecordingOutbound()], backends=[FakeBackend()])
    try:
        second = await build_app(settings, [RecordingOutbound()], backends=[FakeBackend()])  # no lock on PostgreSQL
        assert isinstance(first.engine, SharedEngine) and isinstance(second.engine, SharedEngine)
        assert first.engine.owner != second.engine.owner
        await second.stop()
    finally:
        await first.stop()


@pytest.fixture
def store_kind() -> str:
    return "postgres"


def test_a_password_in_the_config_file_is_refused_and_one_from_the_environment_is_redacted(tmp_path: Path) -> None:
    config = tmp_path / "imagebridge.toml"
    config.write_text('[storage]\nurl = "postgresql://bot:hunter2-pw@db:5432/imagebridge"\n', encoding="utf-8")
    with pytest.raises(ConfigError) as refused:
        load_settings(config)
    assert "IMAGEBRIDGE_STORAGE_PASSWORD" in str(refused.value) and "hunter2" not in str(refused.value)
    config.write_text('[storage]\nurl = "postgresql://bot@db:5432/imagebridge"\n', encoding="utf-8")
    assert load_settings(config).storage.postgres
    settings = load_settings(None, {"storage": {"url": "postgresql://bot:s3cret-from-env@db/imagebridge"}})
    assert "s3cret-from-env" not in repr(settings) and "s3cret-from-env" not in str(settings.storage)
    assert "s3cret-from-env" not in redact("connecting to postgresql://bot:s3cret-from-env@db/imagebridge")
    with pytest.raises(ConfigError, match="only postgresql://"):
        load_settings(None, {"storage": {"url": "mysql://db/x"}})


async def test_an_unreachable_server_is_one_clear_line(tmp_path: Path) -> None:
    port = free_port()  # nothing listens there
    settings = make_settings(tmp_path / "data", storage={"url": f"postgresql://bot@127.0.0.1:{port}/x"})
    with pytest.raises(ConfigError, match=r"storage\.url: cannot open the PostgreSQL database"):
        await build_app(settings, [RecordingOutbound()], backends=[FakeBackend()])


def test_without_a_server_the_postgresql_tests_skip_saying_why_unless_required(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from _pytest.outcomes import Failed, Skipped

    from tests.postgres_support import _unavailable

    monkeypatch.delenv("IMAGEBRIDGE_REQUIRE_POSTGRES", raising=False)
    with pytest.raises(Skipped, match="apt-get install postgresql"):
        _unavailable("no PostgreSQL server binaries")
    monkeypatch.setenv("IMAGEBRIDGE_REQUIRE_POSTGRES", "1")  # what .ci/run sets
    with pytest.raises(Failed, match="required here"):
        _unavailable("no PostgreSQL server binaries")


async def test_import_sqlite_keeps_history_quotas_and_settings(
    tmp_path: Path, empty_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from bot.ports import UserPrefs
    from commands.dispatch import dispatch_text
    from tests.conftest import invocation

    settings = make_settings(tmp_path / "data", quota={"user_daily": 1000.0})
    old = await build_app(settings, [RecordingOutbound()], backends=[FakeBackend()])
    await old.start()
    ids = []
    for index in range(3):
        reply = await dispatch_text(old.services, invocation(user=f"u{index % 2}"), f"/imagine kept {index}")
        assert reply is not None and reply.job_id
        await asyncio.wait_for(old.engine.finished_event(reply.job_id).wait(), 10)
        ids.append(reply.job_id)
    await old.services.user_settings.save(UserPrefs("console", "s1", "u0", steps=33, private=True))
    await old.services.inbox.record("telegram", "-1", "9", '{"pending": true}')
    before = [await old.services.store.get(job_id) for job_id in ids]
    used = await old.services.store.usage("console", "s1", "u0", before[0].created_at.date())  # type: ignore[union-attr]
    history = [job.id for job in await old.services.store.history("console", "u0", 10)]
    images = [await old.services.store.images(job_id) for job_id in ids]
    assert all(images)
    await old.services.jobs.set_drained("fake", True)  # a drain is kept across the move too
    await old.stop()

    config = tmp_path / "imagebridge.toml"
    config.write_text(f'data_dir = "{tmp_path / "data"}"\n', encoding="utf-8")
    done = await asyncio.to_thread(cli, config, empty_url, "import-sqlite")
    assert done.returncode == 0, done.stderr
    assert "jobs 3" in done.stdout and "images 3" in done.stdout and "user_settings 1" in done.stdout
    again = await asyncio.to_thread(cli, config, empty_url, "import-sqlite")
    assert again.returncode == 2 and "already holds jobs" in again.stderr

    moved = await build_app(
        make_settings(tmp_path / "data", storage={"url": empty_url}), [RecordingOutbound()], backends=[FakeBackend()]
    )
    try:
        store = moved.services.store
        assert [await store.get(job_id) for job_id in ids] == before, "every field, times and JSON included"
        assert [await store.images(job_id) for job_id in ids] == images
        assert await store.usage("console", "s1", "u0", before[0].created_at.date()) == used  # type: ignore[union-attr]
        assert [job.id for job in await store.history("console", "u0", 10)] == history
        prefs = await moved.services.user_settings.get("console", "s1", "u0")
        assert (prefs.steps, prefs.private) == (33, True)
        assert [entry.message_id for entry in await moved.services.inbox.pending("telegram")] == ["9"]
        assert moved.engine.drains is not None and await moved.engine.drains.drained_backends() == {"fake"}
    finally:
        await moved.stop()


async def test_the_password_secret_reaches_the_server_and_a_wrong_one_is_one_clear_line(
    tmp_path: Path, postgres_server: PostgresServer, storage: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.postgres_support import PASSWORD_ROLE

    url = storage["storage"]["url"]
    admin = await asyncpg.connect(url)
    try:  # a login that must give its password (pg_hba: scram-sha-256 for this role only)
        await admin.execute(f"DROP ROLE IF EXISTS {PASSWORD_ROLE}")  # left by an earlier test session's database
        await admin.execute(f"CREATE ROLE {PASSWORD_ROLE} LOGIN SUPERUSER PASSWORD 'right-pw-c4n4ry'")
    finally:
        await admin.close()
    with_role = url.replace("postgres@", f"{PASSWORD_ROLE}@")
    settings = make_settings(tmp_path / "data", storage={"url": with_role})
    monkeypatch.setenv("IMAGEBRIDGE_STORAGE_PASSWORD", "wrong-pw-c4n4ry")
    with pytest.raises(ConfigError, match="password authentication failed") as refused:
        await build_app(settings, [RecordingOutbound()], backends=[FakeBackend()])
    assert "c4n4ry" not in str(refused.value)
    monkeypatch.setenv("IMAGEBRIDGE_STORAGE_PASSWORD", "right-pw-c4n4ry")
    app = await build_app(settings, [RecordingOutbound()], backends=[FakeBackend()])
    try:
        assert await app.db.fetchone("SELECT current_user") == (PASSWORD_ROLE,)
    finally:
        await app.stop()
