"""Several bot processes on one PostgreSQL: exactly one polls Telegram; when it dies another takes over, and
every command sent meanwhile is handled once. Real python-telegram-bot, the Bot API simulator (which answers a
second poller with 409 Conflict as Telegram does), a real PostgreSQL.

Two Apps in one test process stand for two bot processes. The one-bot-per-database lock (storage/postgres/lock.py)
is bypassed here: it goes when the engine claims jobs from the store (another branch)."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from pydantic import SecretStr

from adapters.telegram import TelegramPlatform, create
from bot.app import App, build_app
from bot.config_telegram import TelegramConfig
from simulators.telegram import TelegramSimulator
from storage.postgres.lock import PgProcessLock
from tests.conftest import make_settings
from tests.fakes import FakeBackend
from tests.postgres_support import PostgresServer, drop_database, fresh_database

pytestmark = pytest.mark.telegram
ROOT = Path(__file__).resolve().parent.parent
PRIVATE = 42
HOLDER = (
    "SELECT pg_terminate_backend(l.pid) FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
    "WHERE l.locktype = 'advisory' AND l.granted AND a.application_name LIKE 'imagebridge telegram-polling%'"
)


@dataclass
class Process:
    """One bot process: its App and its Telegram platform."""

    app: App
    platform: TelegramPlatform
    stopped: bool = False

    @property
    def polling(self) -> asyncio.Event:
        assert self.platform.turn is not None, "on PostgreSQL the platform polls only under the role"
        return self.platform.turn.polling

    @property
    def updater_running(self) -> bool:
        updater = self.platform.application.updater
        return updater is not None and updater.running

    async def stop(self) -> None:
        if self.stopped:
            return
        self.stopped = True
        await self.platform.stop()
        await self.app.stop()


@pytest.fixture
async def url(postgres_server: PostgresServer, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[str]:
    async def no_lock(self: PgProcessLock, *_args: Any) -> PgProcessLock:
        return self

    monkeypatch.setattr(PgProcessLock, "acquire", no_lock)
    made = await fresh_database(postgres_server)
    yield made
    await drop_database(postgres_server, made)


@pytest.fixture
async def sim() -> AsyncIterator[TelegramSimulator]:
    sim = TelegramSimulator(time_scale=0.02)
    await sim.start()
    sim.add_chat(PRIVATE)
    yield sim
    await sim.stop()


async def start_process(sim: TelegramSimulator, url: str, data_dir: Path) -> Process:
    config = TelegramConfig(
        enabled=True, api_base_url=sim.api_base_url, file_base_url=sim.file_base_url, poll_timeout_seconds=1
    )
    settings = make_settings(data_dir, storage={"url": url})
    platform = create(settings, SecretStr(sim.token), config)
    app = await build_app(settings, [platform.outbound], backends=[FakeBackend()])
    await app.start()
    await platform.start(app.services)
    return Process(app, platform)


async def first_poller(*processes: Process) -> Process:
    waits = {asyncio.ensure_future(p.polling.wait()): p for p in processes}
    done, pending = await asyncio.wait(waits, timeout=30, return_when=asyncio.FIRST_COMPLETED)
    for task in pending:
        task.cancel()
    assert done, "no process took the polling role"
    return waits[next(iter(done))]


async def all_handled(url: str, messages: list[int]) -> dict[str, int]:
    """Once every command message has a job, the number of jobs per command message."""
    query = "SELECT destination->>'source_message_id', COUNT(*) FROM jobs GROUP BY 1"
    conn = await asyncpg.connect(url)
    try:
        async with asyncio.timeout(30):
            while True:
                counts = {str(message): int(n) for message, n in await conn.fetch(query)}
                if all(str(m) in counts for m in messages):
                    return counts
                await asyncio.sleep(0.05)  # server-side state: no event to await
    finally:
        await conn.close()


def conflicts(sim: TelegramSimulator) -> int:
    return sum(1 for method, code, _ in sim.errors if method.lower() == "getupdates" and code == 409)


async def test_one_poller_and_a_takeover_without_losing_or_repeating_a_command(
    sim: TelegramSimulator, url: str, tmp_path: Path
) -> None:
    first = await start_process(sim, url, tmp_path / "a")
    second = await start_process(sim, url, tmp_path / "b")
    try:
        holder = await first_poller(first, second)
        other = second if holder is first else first
        before = await sim.send_text(PRIVATE, PRIVATE, "/imagine a lighthouse")
        await all_handled(url, [before.message_id])
        await sim.wait_for(lambda: sim.polls.polls >= 4)  # a few long polls more: a second poller would show
        assert holder.updater_running and not other.updater_running
        assert conflicts(sim) == 0, "two processes polled getUpdates at once"

        admin = await asyncpg.connect(url)
        try:  # the holder's process dies: its connection goes, and the advisory lock with it
            assert await admin.fetchval(f"SELECT COUNT(*) FROM ({HOLDER}) t") == 1
        finally:
            await admin.close()
        during = [await sim.send_text(PRIVATE, PRIVATE, f"/imagine during the hand-over {n}") for n in range(3)]
        await asyncio.wait_for(other.polling.wait(), 30)
        await asyncio.wait_for(_stopped(holder), 30)
        counts = await all_handled(url, [before.message_id, *(m.message_id for m in during)])
        for message in [before, *during]:
            assert counts.get(str(message.message_id)) == 1, f"message {message.message_id}: {counts}"

        await other.stop()  # a graceful stop hands the role back too
        await asyncio.wait_for(holder.polling.wait(), 30)
        after = await sim.send_text(PRIVATE, PRIVATE, "/imagine after the second hand-over")
        counts = await all_handled(url, [before.message_id, *(m.message_id for m in during), after.message_id])
        assert counts.get(str(after.message_id)) == 1
    finally:
        for process in (first, second):
            await process.stop()


async def _stopped(process: Process) -> None:
    while process.updater_running or process.polling.is_set():  # noqa: ASYNC110  (PTB offers no stop event)
        await asyncio.sleep(0.02)


async def spawn(sim: TelegramSimulator, url: str, data_dir: Path) -> asyncio.subprocess.Process:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tests.telegram_poller_process", sim.api_base_url, sim.file_base_url, sim.token, url,
        str(data_dir), stdout=asyncio.subprocess.PIPE, cwd=ROOT,
    )  # fmt: skip
    await said(process, "started")
    return process


async def said(process: asyncio.subprocess.Process, word: str, within: float = 60) -> None:
    assert process.stdout is not None
    async with asyncio.timeout(within):
        while (line := (await process.stdout.readline()).decode().strip()) != word:
            assert line, f"the bot process ended before saying {word!r}"


async def test_kill_9_of_the_polling_process_hands_polling_over(
    sim: TelegramSimulator, url: str, tmp_path: Path
) -> None:
    first = await spawn(sim, url, tmp_path / "a")
    await said(first, "polling")  # the first one started takes the role; the second waits
    second = await spawn(sim, url, tmp_path / "b")
    try:
        before = await sim.send_text(PRIVATE, PRIVATE, "/imagine before the kill")
        await all_handled(url, [before.message_id])
        await sim.wait_for(lambda: sim.polls.polls >= 4)
        assert conflicts(sim) == 0, "two processes polled getUpdates at once"
        first.kill()  # SIGKILL: no cleanup of any kind
        await first.wait()
        during = [await sim.send_text(PRIVATE, PRIVATE, f"/imagine while nobody polls {n}") for n in range(3)]
        await said(second, "polling", 30)
        counts = await all_handled(url, [before.message_id, *(m.message_id for m in during)])
        for message in [before, *during]:
            assert counts.get(str(message.message_id)) == 1, f"message {message.message_id}: {counts}"
    finally:
        for process in (first, second):
            if process.returncode is None:
                process.kill()
                await process.wait()
