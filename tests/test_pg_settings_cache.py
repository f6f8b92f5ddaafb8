"""Two bot processes on one PostgreSQL: an admin's change in one (a ban, a server's settings) is seen by the
other's next command, although each caches users and servers (NOTIFY on imagebridge_accounts). Real PostgreSQL;
two Apps stand for two processes, with the one-bot-per-database lock bypassed (it goes with the claiming engine)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from bot.app import App, build_app
from bot.replies import Tone
from commands.dispatch import dispatch_text
from storage.postgres.account_signals import AccountSignals
from storage.postgres.accounts import PgAccountStore
from storage.postgres.lock import PgProcessLock
from tests.conftest import invocation, make_settings
from tests.fakes import FakeBackend, RecordingOutbound
from tests.postgres_support import PostgresServer, drop_database, fresh_database


@pytest.fixture
async def two_apps(
    postgres_server: PostgresServer, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> AsyncIterator[tuple[App, App]]:
    async def no_lock(self: PgProcessLock, *_args: Any) -> PgProcessLock:
        return self

    monkeypatch.setattr(PgProcessLock, "acquire", no_lock)
    url = await fresh_database(postgres_server)
    apps: list[App] = []
    for name in ("a", "b"):
        settings = make_settings(tmp_path / name, storage={"url": url})
        apps.append(await build_app(settings, [RecordingOutbound()], backends=[FakeBackend()]))
        await apps[-1].start()
    yield apps[0], apps[1]
    for app in apps:
        await app.stop()
    await drop_database(postgres_server, url)


def signals_of(app: App) -> AccountSignals:
    accounts = app.services.accounts
    assert isinstance(accounts, PgAccountStore) and accounts.signals is not None, "no LISTEN for settings changes"
    return accounts.signals


async def heard(app: App, count: int) -> None:
    """Until this process has received `count` change notices."""
    signals = signals_of(app)
    async with asyncio.timeout(10), signals.changed:
        await signals.changed.wait_for(lambda: signals.heard >= count)


async def test_a_ban_and_a_pause_in_one_process_reach_the_others_next_command(two_apps: tuple[App, App]) -> None:
    first, second = two_apps
    before = await dispatch_text(second.services, invocation(), "/imagine before the ban")
    assert before is not None and before.job_id, "u1 and server s1 are now cached in the second process"
    assert not (await second.services.accounts.server("console", "s1")).paused

    admin = invocation(is_admin=True, user="boss")
    await dispatch_text(first.services, admin, "/admin ban u1")
    await dispatch_text(first.services, admin, "/admin pause")
    await heard(second, 2)

    refused = await dispatch_text(second.services, invocation(), "/imagine after the ban")
    assert refused is not None and refused.tone is Tone.ERROR and "banned" in refused.text
    assert (await second.services.accounts.server("console", "s1")).paused


async def test_a_lost_listening_connection_empties_the_caches(two_apps: tuple[App, App]) -> None:
    first, second = two_apps
    assert not (await second.services.accounts.user("console", "u1")).banned  # cached
    signals = signals_of(second)
    admin = await asyncpg.connect(first.settings.storage.url.get_secret_value())  # type: ignore[union-attr]
    try:  # the change lands while the second process's LISTEN connection is down: its notice is missed
        await admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE query LIKE 'LISTEN%imagebridge_accounts%'"
        )
        await admin.execute("INSERT INTO users (platform, user_id, banned) VALUES ('console', 'u1', TRUE)")
    finally:
        await admin.close()
    async with asyncio.timeout(10), signals.changed:  # connected again (and so the caches emptied)
        await signals.changed.wait_for(lambda: signals.connects >= 2)
    assert (await second.services.accounts.user("console", "u1")).banned
