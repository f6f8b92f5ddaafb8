"""Two bot processes on one PostgreSQL show the same queue: /queue, positions, tickets, running jobs and the
waiting jobs' status messages follow the shared queue, not one process's memory. Real PostgreSQL, our A1111
client against one A1111 simulator per process (each held by the test, so jobs wait), the console and, for the
status edits, the real python-telegram-bot against the Bot API simulator. Two Apps stand for two processes."""

from __future__ import annotations

import asyncio
import io
import re
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from adapters.backends.a1111 import A1111Backend
from adapters.console.outbound import ConsoleOutbound
from adapters.telegram import create
from bot.app import App, build_app
from bot.config_telegram import TelegramConfig
from bot.replies import Reply
from bot.shared_views import SharedViews
from commands.dispatch import dispatch_text
from simulators.a1111 import A1111Simulator
from simulators.telegram import TelegramSimulator
from tests.conftest import invocation, make_settings
from tests.postgres_support import database_url  # noqa: F401 (the `url` fixture)

pytestmark = [pytest.mark.backends, pytest.mark.telegram]
PRIVATE = 42
JOB_ID = re.compile(r"job ([0-9a-f]{12})")


@dataclass
class Process:
    """One bot process: its App, and the A1111 simulator its only backend talks to (held: nothing finishes)."""

    app: App
    sim: A1111Simulator

    @property
    def views(self) -> SharedViews:
        assert isinstance(self.app.engine, SharedViews), "on PostgreSQL the engine reads the shared queue"
        return self.app.engine

    async def say(self, user: str, text: str) -> Reply:
        reply = await dispatch_text(self.app.services, invocation(user=user), text)
        assert reply is not None
        return reply

    async def imagine(self, user: str, prompt: str) -> str:
        reply = await self.say(user, f"/imagine {prompt}")
        assert reply.job_id, reply.text
        return reply.job_id

    async def finish_one(self) -> None:
        """Let the generation this backend holds run to its end, and hold the next one again."""
        self.sim.lock.release()
        await self.sim.lock.acquire()  # asyncio.Lock hands itself over in FIFO order: the waiting job goes first

    async def generations(self, count: int) -> None:
        """Until this backend has been sent `count` generations (each waits at its lock)."""
        await self.sim._wait(lambda: txt2img(self.sim) >= count, 15)  # the simulator's own wait


def txt2img(sim: A1111Simulator) -> int:
    return sum(1 for request in sim.requests if request.path.endswith("/txt2img"))


Launch = Callable[..., Any]


@pytest.fixture
async def launch(url: str, tmp_path: Path) -> AsyncIterator[Launch]:
    async with AsyncExitStack() as stack:

        async def start(name: str, outbound: Any = None, runs: bool = True) -> Process:
            sim = A1111Simulator(flavour="forge", seconds_per_step=0.001, model_load_seconds=0.0)
            address = await sim.start()
            stack.push_async_callback(sim.stop)
            await sim.lock.acquire()  # every generation waits until the test lets one through
            stack.push_async_callback(_let_go, sim)
            backend = A1111Backend(f"gpu-{name}", address, kind="forge", poll_interval_seconds=0.05)
            settings = make_settings(
                tmp_path / name, storage={"url": url}, backends={f"gpu-{name}": {"kind": "forge", "url": address}}
            )
            outbounds = [outbound or ConsoleOutbound(stream=io.StringIO())]
            app = await build_app(settings, outbounds, backends=[backend] if runs else [])
            app.engine.positions.interval = 0.0  # re-place at every change; the platform throttles its edits
            await app.start()
            stack.push_async_callback(app.stop)
            return Process(app, sim)

        yield start


async def _let_go(sim: A1111Simulator) -> None:
    if sim.lock.locked():
        sim.lock.release()


def queue_lines(reply: Reply) -> list[str]:
    return reply.text.splitlines()[1:]


async def test_queue_tickets_and_running_jobs_span_both_processes(launch: Launch) -> None:
    first, second = await launch("a"), await launch("b")
    one = await second.imagine("u1", "one")
    two = await second.imagine("u1", "two")
    await first.generations(1)
    await second.generations(1)  # one running on each process's backend
    three = await second.imagine("u1", "three")
    four = await first.imagine("u2", "four")  # u2 has had nothing yet: fair order puts it ahead of u1's third
    five = await first.say("u1", "/imagine five")
    assert five.job_id and "Queued #3 in line" in five.text, five.text  # the other process's jobs count

    for process in (first, second):
        views = process.views
        await views.replica.wait_for(lambda v=views: v.queue_length() == 3, 10)
        assert {job.id for job in views.running_jobs()} == {one, two}
        assert [job.id for _, job in views.queued_jobs()] == [four, three, five.job_id]
        assert views.queued_count("console", "u1") == 2 and views.is_queued(three)
        running = views.active_job(one)
        assert running is not None and running.state.value == "running"
        shown = queue_lines(await process.say("u3", "/queue"))
        assert shown[0].startswith("▶") and shown[1].startswith("▶")
        assert {shown[0].split()[1], shown[1].split()[1]} == {one, two}
        assert [line.split()[:2] for line in shown[2:]] == [["#1", four], ["#2", three], ["#3", five.job_id]]


@pytest.fixture
async def telegram() -> AsyncIterator[TelegramSimulator]:
    sim = TelegramSimulator(time_scale=0.02)
    await sim.start()
    sim.add_chat(PRIVATE)
    yield sim
    await sim.stop()


async def test_a_waiting_job_message_moves_when_the_other_process_starts_the_job_ahead(
    launch: Launch, telegram: TelegramSimulator, tmp_path: Path
) -> None:
    platform = create(make_settings(tmp_path / "tg"), SecretStr(telegram.token), telegram_config(telegram))
    first = await launch("a", platform.outbound)  # takes the Telegram commands and posts their status
    second = await launch("b")  # a backend of its own, no Telegram
    await platform.start(first.app.services)
    try:
        ids = [await sent(telegram, f"/imagine picture {n}") for n in range(4)]
        await first.generations(1)
        await second.generations(1)  # the first two run, one in each process; the last two wait
        last = next(m for m in telegram.visible(PRIVATE) if ids[3] in (m.text or ""))
        await telegram.wait_for(lambda: "Queued #2 in line" in (last.text or ""))
        edits = last.edits

        await second.finish_one()  # the other process's backend is free: it starts the third job
        await second.generations(2)
        await telegram.wait_for(lambda: "Queued #1 in line" in (last.text or ""))
        assert last.edits > edits
        notifier = first.app.engine.notifier  # the third job's status is the other process's now: none from here
        await first.views.replica.wait_for(lambda: ids[2] not in notifier.streams(), 10)
    finally:
        await platform.stop()


async def test_the_waiting_jobs_of_a_process_that_died_are_edited_by_another(
    launch: Launch, telegram: TelegramSimulator, tmp_path: Path, url: str
) -> None:
    config, token = telegram_config(telegram), SecretStr(telegram.token)
    platforms = [create(make_settings(tmp_path / n, storage={"url": url}), token, config) for n in ("ta", "tb")]
    first = await launch("a", platforms[0].outbound, runs=False)  # takes the commands, runs no job
    second = await launch("b", platforms[1].outbound)  # runs them; Telegram too, but not polling yet
    await platforms[0].start(first.app.services)
    try:
        assert platforms[0].turn is not None
        await asyncio.wait_for(platforms[0].turn.polling.wait(), 30)
        await platforms[1].start(second.app.services)
        ids = [await sent(telegram, f"/imagine picture {n}") for n in range(3)]
        await second.generations(1)
        last = next(m for m in telegram.visible(PRIVATE) if ids[2] in (m.text or ""))
        await telegram.wait_for(lambda: "Queued #2 in line" in (last.text or ""))

        await platforms[0].stop()
        await first.app.stop()  # its connections close: the store sees it gone, as after a kill -9
        await second.finish_one()  # the first job ends: the second starts, the third is next
        await second.generations(2)
        await telegram.wait_for(lambda: "Queued #1 in line" in (last.text or ""), 20)
    finally:
        for platform in platforms:
            await platform.stop()


def telegram_config(telegram: TelegramSimulator) -> TelegramConfig:
    return TelegramConfig(
        enabled=True,
        api_base_url=telegram.api_base_url,
        file_base_url=telegram.file_base_url,
        private_progress_interval_seconds=0.02,
        poll_timeout_seconds=1,
        flood_time_scale=0.03,
    )


async def sent(telegram: TelegramSimulator, text: str) -> str:
    """Send a command in the private chat; the id of the job the bot's answer names."""
    message = await telegram.send_text(PRIVATE, PRIVATE, text)
    found: list[str] = []

    def answered() -> bool:
        for reply in telegram.visible(PRIVATE):
            match = JOB_ID.search(reply.text or "")  # its queued message (another process may post progress)
            if reply.message_id > message.message_id and match and (reply.text or "").startswith("Queued"):
                found.append(match.group(1))
                return True
        return False

    await telegram.wait_for(answered, 10)
    return found[0]
