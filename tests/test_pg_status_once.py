"""One status message per job across processes (PostgreSQL): the process that took the command posts it, and a
process that claims the job before that post is recorded edits that message instead of posting a second one;
if the first process died before posting, the one that runs the job posts it. Real PostgreSQL, the real
python-telegram-bot against the Bot API simulator (its answers held, as a slow network holds them), our A1111
client against the A1111 simulator. Two Apps stand for two processes."""

from __future__ import annotations

import asyncio
import io
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from adapters.backends.a1111 import A1111Backend
from adapters.console.outbound import ConsoleOutbound
from adapters.telegram import TelegramPlatform, create
from bot.app import App, build_app
from bot.shared_queue import SharedEngine
from simulators.a1111 import A1111Simulator
from simulators.telegram_faults import FaultyTelegramSimulator
from tests.conftest import make_settings
from tests.postgres_support import database_url  # noqa: F401 (the `url` fixture)
from tests.test_pg_views import JOB_ID, PRIVATE, telegram_config

pytestmark = [pytest.mark.backends, pytest.mark.telegram]

Launch = Callable[..., Any]


@pytest.fixture
async def telegram() -> AsyncIterator[FaultyTelegramSimulator]:
    sim = FaultyTelegramSimulator(time_scale=0.02)
    await sim.start()
    sim.add_chat(PRIVATE)
    yield sim
    await sim.stop()


@pytest.fixture
async def launch(url: str, tmp_path: Path, telegram: FaultyTelegramSimulator) -> AsyncIterator[Launch]:
    """A bot process with Telegram (polling once it holds the role) and, if `runs`, an A1111 backend of its own
    whose generations report progress for about a second (`step`: seconds per step)."""
    async with AsyncExitStack() as stack:

        async def start(name: str, runs: bool, step: float = 0.05, **config: Any) -> tuple[App, TelegramPlatform]:
            backends = []
            if runs:
                sim = A1111Simulator(flavour="forge", seconds_per_step=step, model_load_seconds=0.0)
                address = await sim.start()
                stack.push_async_callback(sim.stop)
                backends.append(A1111Backend(f"gpu-{name}", address, kind="forge", poll_interval_seconds=0.05))
            settings = make_settings(tmp_path / name, storage={"url": url})
            platform = create(settings, SecretStr(telegram.token), telegram_config(telegram).model_copy(update=config))
            app = await build_app(
                settings, [platform.outbound, ConsoleOutbound(stream=io.StringIO())], backends=backends
            )
            await app.start()
            stack.push_async_callback(app.stop)
            await platform.start(app.services)
            stack.push_async_callback(platform.stop)
            return app, platform

        yield start


def status_posts(telegram: FaultyTelegramSimulator, job_id: str) -> list[str]:
    """The texts of every sendMessage into the chat that names the job (its status messages, as posted)."""
    return [
        str(fields.get("text", ""))
        for method, fields in telegram.calls
        if method.lower() == "sendmessage" and job_id in str(fields.get("text", ""))
    ]


async def command(telegram: FaultyTelegramSimulator, text: str) -> str:
    """Send a command in the private chat; the id of the job named by the first bot message that follows."""
    message = await telegram.send_text(PRIVATE, PRIVATE, text)
    found: list[str] = []

    def named() -> bool:
        for method, fields in telegram.calls:
            match = JOB_ID.search(str(fields.get("text", ""))) if method.lower() == "sendmessage" else None
            if match and str(fields.get("chat_id")) == str(PRIVATE):
                found.append(match.group(1))
                return True
        return False

    await telegram.wait_for(named, 10)
    assert message.message_id
    return found[0]


def status_shown(telegram: FaultyTelegramSimulator, job_id: str) -> bool:
    return any(m.from_bot and m.photo is None and job_id in (m.text or "") for m in telegram.visible(PRIVATE))


def delivered(telegram: FaultyTelegramSimulator, job_id: str) -> bool:
    return any(f"reroll:{job_id}" in m.buttons for m in telegram.bot_photos(PRIVATE))


async def test_a_job_claimed_before_its_first_post_is_recorded_keeps_one_status_message(
    launch: Launch, telegram: FaultyTelegramSimulator
) -> None:
    first, first_tg = await launch("a", runs=False)  # takes the command and posts its status; runs nothing
    assert first_tg.turn is not None
    await asyncio.wait_for(first_tg.turn.polling.wait(), 30)
    second, _ = await launch("b", runs=True)  # claims the job at once, while the first post's answer is held
    telegram.slow["sendmessage"] = 1.0  # the message is in the chat at once; the bot learns its id a second later

    job_id = await command(telegram, "/imagine a lighthouse at dusk")
    await telegram.wait_for(lambda: delivered(telegram, job_id), 30)
    posts = status_posts(telegram, job_id)
    assert len(posts) == 1 and posts[0].startswith("Queued"), posts  # the other process edited that one
    await telegram.wait_for(lambda: not status_shown(telegram, job_id), 10)  # the result replaced it
    assert isinstance(second.engine, SharedEngine) and isinstance(first.engine, SharedEngine)


async def test_a_job_whose_command_process_died_before_posting_gets_one_status_message(
    launch: Launch, telegram: FaultyTelegramSimulator
) -> None:
    first, first_tg = await launch("a", runs=False, max_send_attempts=2)
    assert first_tg.turn is not None
    await asyncio.wait_for(first_tg.turn.polling.wait(), 30)
    telegram.drop["sendmessage"] = 1000  # every post from here on is lost on the way: none takes effect
    await telegram.send_text(PRIVATE, PRIVATE, "/imagine a quiet harbour")
    await telegram.wait_for(lambda: telegram.dropped >= 1, 10)
    jobs = first.engine.queued_jobs()
    assert len(jobs) == 1
    job_id = jobs[0][1].id
    await first_tg.stop()
    await first.stop()  # gone from the store, its job's first post never made

    telegram.drop.clear()
    second, _ = await launch("b", runs=True)
    assert isinstance(second.engine, SharedEngine)
    second.engine.first_post_wait = 60.0  # not waited for: the process that was to post is gone
    await telegram.wait_for(lambda: delivered(telegram, job_id), 30)
    posts = status_posts(telegram, job_id)
    assert len(posts) == 1, posts  # the process that runs it posted the status message, once
