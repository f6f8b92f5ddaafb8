"""A process that loses the Telegram polling role while one of its command handlers runs keeps running it, and the
new holder replays the same command from the inbox (its row is not settled yet): exactly one job comes of it.
The job's insert settles the command's inbox row in its transaction, so the second insert sees it settled and
is refused quietly. Two Apps on one real PostgreSQL, the real python-telegram-bot client, the Bot API simulator;
the first handler is held on its getChatMember answer (a slow network) while the role changes hands."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from simulators.telegram_faults import FaultyTelegramSimulator
from tests.test_telegram_polling_role import HOLDER, Process, first_poller, start_process, url

pytestmark = pytest.mark.telegram
__all__ = ["url"]
GROUP = -1003
USER = 7


@pytest.fixture
async def sim() -> AsyncIterator[FaultyTelegramSimulator]:
    sim = FaultyTelegramSimulator(time_scale=0.02)
    await sim.start()
    sim.add_chat(GROUP, title="artists", admins=(1,))
    yield sim
    sim.held.clear()
    await sim.stop()


def watch_submits(processes: list[Process]) -> tuple[list[str], asyncio.Condition]:
    """Each process's submit outcomes, as they end: a job id, or the error's class name."""
    ended: list[str] = []
    changed = asyncio.Condition()
    for process in processes:
        jobs: Any = process.app.services.jobs
        submit = jobs.submit

        async def spy(job: Any, *args: Any, submit: Any = submit, **kwargs: Any) -> Any:
            try:
                ticket = await submit(job, *args, **kwargs)
                ended.append(job.id)
                return ticket
            except Exception as exc:
                ended.append(type(exc).__name__)
                raise
            finally:
                async with changed:
                    changed.notify_all()

        jobs.submit = spy
    return ended, changed


async def test_a_command_replayed_by_the_new_holder_while_the_old_one_handles_it_makes_one_job(
    sim: FaultyTelegramSimulator, url: str, tmp_path: Path
) -> None:
    first = await start_process(sim, url, tmp_path / "a")
    second = await start_process(sim, url, tmp_path / "b")
    try:
        holder = await first_poller(first, second)
        other = second if holder is first else first
        ended, changed = watch_submits([first, second])
        sim.held["getchatmember"] = release = asyncio.Event()  # the handler's admin check waits on the network

        command = await sim.send_text(GROUP, USER, "/imagine a lighthouse at dusk")
        await sim.wait_for(lambda: sim.count("getChatMember") >= 1)  # the holder's handler is running
        admin = await asyncpg.connect(url)
        try:  # the holder's lock session ends (a network cut to the database); its process lives on
            assert await admin.fetchval(f"SELECT COUNT(*) FROM ({HOLDER}) t") == 1
        finally:
            await admin.close()
        await asyncio.wait_for(other.polling.wait(), 30)  # the new holder replays the unsettled command
        await sim.wait_for(lambda: sim.count("getChatMember") >= 2, 30)
        release.set()

        async with asyncio.timeout(30), changed:
            await changed.wait_for(lambda: len(ended) >= 2)
        made = [outcome for outcome in ended if outcome != "AlreadyHandled"]
        assert len(made) == 1 and "AlreadyHandled" in ended, ended

        conn = await asyncpg.connect(url)
        try:
            jobs = await conn.fetch(
                "SELECT id FROM jobs WHERE destination->>'source_message_id' = $1", str(command.message_id)
            )
        finally:
            await conn.close()
        assert [row["id"] for row in jobs] == made
        await sim.wait_for(lambda: len(sim.bot_photos(GROUP)) == 1, 30)  # run by either process, delivered once
        texts = [message.text or message.caption or "" for message in sim.visible(GROUP)]
        assert not any("already handled" in text for text in texts), texts
    finally:
        for process in (first, second):
            await process.stop()
