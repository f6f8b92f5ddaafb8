"""A private job's status in its owner's private chat across processes (PostgreSQL): the process that took the
command posts it, the process that runs the job edits that same message with the progress (it waits for the
first one's record, as for the group's status) and replaces it with the result. Real PostgreSQL, the real
python-telegram-bot against the Bot API simulator (its answers held, as a slow network holds them), our A1111
client against the A1111 simulator. Two Apps stand for two processes."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

from simulators.telegram_faults import FaultyTelegramSimulator
from tests.postgres_support import database_url  # noqa: F401 (the `url` fixture)
from tests.test_pg_status_once import Launch, launch
from tests.test_pg_views import JOB_ID
from tests.test_telegram_support import GROUP, PRIVATE

pytestmark = [pytest.mark.backends, pytest.mark.telegram]
__all__ = ["launch"]  # the fixture (it uses this module's `telegram`, which has the group too)


@pytest.fixture
async def telegram() -> AsyncIterator[FaultyTelegramSimulator]:
    sim = FaultyTelegramSimulator(time_scale=0.02)
    await sim.start()
    sim.add_chat(PRIVATE)
    sim.add_chat(GROUP, title="artists", admins=(1,))
    yield sim
    await sim.stop()


def calls_to(telegram: FaultyTelegramSimulator, chat_id: int, method: str) -> list[dict[str, Any]]:
    return [
        fields
        for name, fields in telegram.calls
        if name.lower() == method.lower() and str(fields.get("chat_id")) == str(chat_id)
    ]


async def test_the_process_running_a_private_job_edits_the_status_the_other_posted_in_the_private_chat(
    launch: Launch, telegram: FaultyTelegramSimulator
) -> None:
    _, first_tg = await launch("a", runs=False)  # takes the command and posts the statuses; runs nothing
    assert first_tg.turn is not None
    await asyncio.wait_for(first_tg.turn.polling.wait(), 30)
    await launch("b", runs=True, step=0.2)  # claims the job at once, while the first posts' answers are held
    telegram.slow["sendmessage"] = 1.0  # the messages are in the chats at once; the bot learns their ids later,
    telegram.slow_chats[PRIVATE] = 1.0  # the private chat's last (b's group status is edited meanwhile)

    await telegram.send_text(GROUP, PRIVATE, "/imagine@test_bot a lighthouse at dusk --private")
    found: list[str] = []

    def named() -> bool:
        for fields in calls_to(telegram, GROUP, "sendMessage"):
            if match := JOB_ID.search(str(fields.get("text", ""))):
                found.append(match.group(1))
                return True
        return False

    await telegram.wait_for(named, 10)
    job_id = found[0]
    await telegram.wait_for(lambda: any(f"reroll:{job_id}" in m.buttons for m in telegram.bot_photos(PRIVATE)), 30)
    posts = calls_to(telegram, PRIVATE, "sendMessage")
    assert len(posts) == 1 and "lighthouse" in str(posts[0].get("text")), posts  # one status in the private chat
    edits = calls_to(telegram, PRIVATE, "editMessageText") + calls_to(telegram, PRIVATE, "editMessageMedia")
    assert any("%" in str(fields) for fields in edits), edits  # its progress, edited by the running process
    await telegram.wait_for(  # the result replaced it
        lambda: not any(m.from_bot and f"cancel:{job_id}" in m.buttons for m in telegram.visible(PRIVATE)), 10
    )
    assert not any("lighthouse" in str(fields) for fields in calls_to(telegram, GROUP, "sendMessage"))
