"""A role held by one process at a time across processes (Telegram polling): the second waits, and takes over
when the holder's process dies; the holder learns when it lost its connection. On a real PostgreSQL."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import asyncpg
import pytest
from pydantic import SecretStr

from storage.postgres.leader import Leadership
from tests.postgres_support import PostgresServer, drop_database, fresh_database


@pytest.fixture
async def url(postgres_server: PostgresServer) -> AsyncIterator[SecretStr]:
    made = await fresh_database(postgres_server)
    yield SecretStr(made)
    await drop_database(postgres_server, made)


async def waiting_for_a_lock(url: SecretStr) -> None:
    """Until some session waits on an advisory lock (polled: the server offers no event for it)."""
    waiting = "SELECT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND NOT granted)"
    conn = await asyncpg.connect(url.get_secret_value())
    try:
        async with asyncio.timeout(30):
            while not await conn.fetchval(waiting):  # noqa: ASYNC110  (server-side state: no event to await)
                await asyncio.sleep(0.02)
    finally:
        await conn.close()


async def test_one_holder_and_a_takeover_when_it_dies(url: SecretStr) -> None:
    first, second, other_role = Leadership("telegram-poller"), Leadership("telegram-poller"), Leadership("other")
    await first.acquire(url)
    assert first.held
    assert not await Leadership("telegram-poller").try_acquire(url), "held elsewhere: not taken"
    assert await other_role.try_acquire(url), "another role is another lock"
    waiting = asyncio.create_task(second.acquire(url))
    await waiting_for_a_lock(url)
    assert not waiting.done()
    admin = await asyncpg.connect(url.get_secret_value())
    try:  # the holder's process dies: the server ends its session
        await admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name LIKE "
            "'imagebridge telegram-poller%' AND state != 'active'"
        )
    finally:
        await admin.close()
    await asyncio.wait_for(waiting, 30)
    assert second.held
    await asyncio.wait_for(first.lost.wait(), 30)  # the old holder learns it must stop
    assert not first.held
    for role in (first, second, other_role):
        await role.release()


async def test_giving_up_a_wait_leaves_no_lock_behind(url: SecretStr) -> None:
    holder, quitter = Leadership("telegram-poller"), Leadership("telegram-poller")
    await holder.acquire(url)
    waiting = asyncio.create_task(quitter.acquire(url))
    await waiting_for_a_lock(url)
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting
    await holder.release()
    later = Leadership("telegram-poller")
    assert await later.try_acquire(url), "the cancelled waiter did not take the role on its way out"
    await later.release()


async def test_a_holder_asks_whether_its_session_still_answers(url: SecretStr) -> None:
    holder = Leadership("telegram-polling", url)
    await holder.acquire()
    assert await holder.alive() and holder.held
    admin = await asyncpg.connect(url.get_secret_value())
    try:  # the session goes (a server restart, a network that cut it): the lock is gone with it
        await admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE application_name LIKE 'imagebridge telegram-polling%'"
        )
    finally:
        await admin.close()
    assert not await holder.alive()
    assert holder.lost.is_set() and not holder.held
    await holder.release()
