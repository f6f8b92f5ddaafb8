"""A chat the bot was removed from is known to every process sharing the queue (PostgreSQL), and so is its
coming back. Real PostgreSQL, the real python-telegram-bot against the Bot API simulator (a removal and an
addition as `my_chat_member` updates, 403 on every call there meanwhile), our A1111 client against the A1111
simulator. Two Apps stand for two processes: one polls Telegram and runs nothing, the other runs the jobs."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import pytest

from bot.shared_queue import SharedEngine
from simulators.telegram_faults import FORBIDDEN_KICKED, FaultyTelegramSimulator
from tests.postgres_support import PostgresServer, database_url, drop_database, fresh_database, read_pg
from tests.telegram_faults_support import fault_bench
from tests.test_pg_status_once import Launch, launch, telegram
from tests.test_telegram_support import GROUP

pytestmark = [pytest.mark.backends, pytest.mark.telegram]
__all__ = ["database_url", "launch", "telegram"]  # fixtures (database_url is `url`)
JOB_ID = re.compile(r"job ([0-9a-f]{12})")


async def group_command(sim: FaultyTelegramSimulator, text: str) -> str:
    """A command in the group; the id of the job named by the bot's first message there that no earlier one named."""
    known = set(named_jobs(sim))
    await sim.send_text(GROUP, 5, text)
    found: list[str] = []

    def new() -> bool:
        found[:] = [job for job in named_jobs(sim) if job not in known]
        return bool(found)

    await sim.wait_for(new, 10)
    return found[0]


def named_jobs(sim: FaultyTelegramSimulator) -> list[str]:
    texts = [
        str(f.get("text", ""))
        for m, f in sim.calls
        if m.lower() == "sendmessage" and str(f.get("chat_id")) == str(GROUP)
    ]
    return [match.group(1) for text in texts if (match := JOB_ID.search(text))]


def row(url: str, job_id: str) -> tuple[str, str, str]:
    """(state, delivery, quota ledger state) of a job."""
    found = read_pg(
        url,
        f"SELECT j.state, j.delivery, COALESCE(q.state, 'none') FROM jobs j "
        f"LEFT JOIN quota_ledger q ON q.job_id = j.id WHERE j.id = '{job_id}'",
    )
    return (str(found[0][0]), str(found[0][1]), str(found[0][2])) if found else ("none", "none", "none")


def photo_of(sim: FaultyTelegramSimulator, job_id: str) -> bool:
    return any(f"reroll:{job_id}" in m.buttons for m in sim.bot_photos(GROUP))


async def test_a_removed_chat_is_known_to_every_process_and_so_is_its_coming_back(
    launch: Launch, telegram: FaultyTelegramSimulator, url: str
) -> None:
    telegram.add_chat(GROUP, title="artists", admins=(1,))
    _, first_tg = await launch("a", runs=False)  # polls Telegram: hears the removal and the coming back
    assert first_tg.turn is not None
    await asyncio.wait_for(first_tg.turn.polling.wait(), 30)
    second, _ = await launch("b", runs=True, step=0.2)  # runs every job

    running = await group_command(telegram, "/imagine@test_bot a lighthouse --steps 50")  # 10 s: still running
    await telegram.wait_for(lambda: row(url, running)[0] == "running", 10)
    waiting = await group_command(telegram, "/imagine@test_bot a harbour")
    await telegram.kick(GROUP)
    await telegram.wait_for(lambda: row(url, running)[1] == "undeliverable", 20)
    await telegram.wait_for(lambda: row(url, waiting)[1] == "undeliverable", 20)
    assert row(url, running) == ("cancelled", "undeliverable", "refunded")
    assert row(url, waiting) == ("cancelled", "undeliverable", "refunded")
    third, _ = await launch("c", runs=False)  # started after the removal: knows it from the store
    assert ("telegram", str(GROUP)) in third.engine.gone_chats

    await telegram.add_back(GROUP)  # heard by the polling process only
    again = await group_command(telegram, "/imagine@test_bot welcome back")
    await telegram.wait_for(lambda: row(url, again)[1] == "delivered", 30)  # run by the other process, as on one
    assert row(url, again) == ("succeeded", "delivered", "settled") and photo_of(telegram, again)
    assert isinstance(second.engine, SharedEngine)
    await telegram.wait_for(lambda: ("telegram", str(GROUP)) not in third.engine.gone_chats, 10)


@pytest.mark.parametrize("store", ["sqlite", "postgres"])
async def test_a_wildcard_command_from_a_chat_learned_gone_by_a_refused_send_runs(
    store: str, tmp_path: Path, postgres_server: PostgresServer
) -> None:
    """The bot learned of its removal from a 403 (the my_chat_member update was missed) and is back (that update
    missed too): a command from the chat says it is back, a wildcard's jobs too (one process, either store)."""
    url = await fresh_database(postgres_server) if store == "postgres" else None
    try:
        async with fault_bench(tmp_path / "data", **({"storage": {"url": url}} if url else {})) as bench:
            bench.backend.hold = True
            await bench.open()
            await bench.sim.send_text(GROUP, 5, "/imagine@test_bot a lighthouse --preset sd15")
            job_id = await bench.job_from(GROUP)
            await bench.backend.started.wait()
            bench.sim.gone[GROUP] = FORBIDDEN_KICKED.format(kind="supergroup")  # no update: the result's send learns it
            bench.backend.hold = False
            bench.backend.release.set()
            await bench.finished(job_id, within=20)
            app = bench.app
            assert app is not None and ("telegram", str(GROUP)) in app.engine.gone_chats
            bench.sim.gone.pop(GROUP)  # added back; that update missed as well
            before = max((m.message_id for m in bench.sim.visible(GROUP)), default=0)
            await bench.sim.send_text(GROUP, 5, "/imagine@test_bot a {red|blue} ball --preset sd15")
            first = await bench.job_from(GROUP, after=before)
            await bench.finished(first, within=20)
            assert any(f"reroll:{first}" in m.buttons for m in bench.sim.bot_photos(GROUP))
    finally:
        if url is not None:
            await drop_database(postgres_server, url)
