"""The Telegram polling holder loses its database connection but keeps running (no kill -9): it stops calling
getUpdates before the process that takes the role over starts, and polls again later when the role is free.
Every command sent meanwhile is handled once. Two Apps in one test process stand for two bot processes (as in
tests/test_telegram_polling_role.py); the simulator tells their getUpdates apart by the Host each one calls."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import pytest
from aiohttp import web
from pydantic import SecretStr

from adapters.telegram import create
from bot.app import build_app
from bot.config_telegram import TelegramConfig
from simulators.telegram import TelegramSimulator
from tests.conftest import make_settings
from tests.fakes import FakeBackend
from tests.test_telegram_polling_role import HOLDER, PRIVATE, Process, _stopped, all_handled, first_poller, url

pytestmark = pytest.mark.telegram
__all__ = ["url"]  # the fixture: a fresh database, the one-bot-per-database lock bypassed


@dataclass
class Poll:
    host: str  # which process: each calls the simulator under its own host name
    at: float  # when the call arrived (the loop's clock)


@pytest.fixture
async def sim(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[tuple[TelegramSimulator, list[Poll]]]:
    polls: list[Poll] = []
    method = TelegramSimulator._method

    async def noting(self: TelegramSimulator, request: web.Request) -> web.Response:
        if request.match_info["method"].lower() == "getupdates":
            polls.append(Poll(request.host.rsplit(":", 1)[0], asyncio.get_running_loop().time()))
        return await method(self, request)

    monkeypatch.setattr(TelegramSimulator, "_method", noting)
    sim = TelegramSimulator(time_scale=0.02)
    await sim.start()
    sim.add_chat(PRIVATE)
    yield sim, polls
    await sim.stop()


async def start_process(sim: TelegramSimulator, url: str, data_dir: Path, host: str) -> Process:
    base = sim.url.replace("127.0.0.1", host)
    config = TelegramConfig(
        enabled=True, api_base_url=f"{base}/bot", file_base_url=f"{base}/file/bot", poll_timeout_seconds=1
    )
    settings = make_settings(data_dir, storage={"url": url})
    platform = create(settings, SecretStr(sim.token), config)
    app = await build_app(settings, [platform.outbound], backends=[FakeBackend()])
    await app.start()
    await platform.start(app.services)
    return Process(app, platform)


async def test_a_holder_whose_lock_connection_is_ended_stops_polling_before_the_next_one_starts(
    sim: tuple[TelegramSimulator, list[Poll]], url: str, tmp_path: Path
) -> None:
    telegram, polls = sim
    hosts = {"127.0.0.1": await start_process(telegram, url, tmp_path / "a", "127.0.0.1")}
    hosts["localhost"] = await start_process(telegram, url, tmp_path / "b", "localhost")
    first, second = hosts.values()
    try:
        holder = await first_poller(first, second)
        other = second if holder is first else first
        name = {id(process): host for host, process in hosts.items()}
        before = await telegram.send_text(PRIVATE, PRIVATE, "/imagine before the connection drops")
        await all_handled(url, [before.message_id])
        await telegram.wait_for(lambda: telegram.polls.polls >= 3)

        assert holder.platform.turn is not None
        lost_at: list[float] = []
        noticed = asyncio.ensure_future(holder.platform.turn.role.lost.wait())
        noticed.add_done_callback(lambda _: lost_at.append(asyncio.get_running_loop().time()))
        admin = await asyncpg.connect(url)
        try:  # the holder's lock session ends (a restarted server, a proxy, an admin); its process runs on
            assert await admin.fetchval(f"SELECT COUNT(*) FROM ({HOLDER}) t") == 1
        finally:
            await admin.close()
        during = [await telegram.send_text(PRIVATE, PRIVATE, f"/imagine while the role moves {n}") for n in range(3)]
        await asyncio.wait_for(other.polling.wait(), 30)
        await asyncio.wait_for(_stopped(holder), 30)
        counts = await all_handled(url, [before.message_id, *(m.message_id for m in during)])
        for message in [before, *during]:
            assert counts.get(str(message.message_id)) == 1, f"message {message.message_id}: {counts}"
        await telegram.wait_for(lambda: sum(1 for p in polls if p.host == name[id(other)]) >= 3)

        await asyncio.wait_for(noticed, 30)
        after_lost = [p.at - lost_at[0] for p in polls if p.host == name[id(holder)] and p.at >= lost_at[0]]
        assert not after_lost, f"the old holder called getUpdates after it knew its role was lost: {after_lost}"
        taken_over = min(p.at for p in polls if p.host == name[id(other)])
        late = [p.at - taken_over for p in polls if p.host == name[id(holder)] and p.at >= taken_over]
        assert not late, f"the old holder called getUpdates {len(late)} time(s) after the new one started: {late}"

        await other.stop()  # the role is free again: the process that lost its connection polls again
        await asyncio.wait_for(holder.polling.wait(), 30)
        after = await telegram.send_text(PRIVATE, PRIVATE, "/imagine after it came back")
        counts = await all_handled(url, [before.message_id, *(m.message_id for m in during), after.message_id])
        assert counts.get(str(after.message_id)) == 1
    finally:
        for process in hosts.values():
            await process.stop()
