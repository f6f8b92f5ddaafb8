"""Crash and restart: `imagebridge run` is killed with SIGKILL at chosen points; every job still ends exactly once.

The first test kills while jobs are queued, running and being delivered; the second kills within milliseconds
of getUpdates answering (the polling edge), also while a slow getChatMember holds the group commands. Both print
their figures (`pytest -s`); `CRASH_EDGE_RUNS=N` repeats the second.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import re
import signal
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from simulators.a1111 import A1111Simulator
from simulators.telegram import TelegramSimulator
from tests.postgres_support import read_pg
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
    db: Path | str  # the SQLite file, or the PostgreSQL URL
    sent: int = 0
    kinds: dict[tuple[str, str], str] = field(default_factory=dict)  # (chat, message) -> private, group, slow-admin

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
        """Wait until every message sent so far was answered with a queued message."""
        await self.sim.wait_for(lambda: len(queued_jobs(self.sim)) >= self.sent, WITHIN)

    def running(self) -> int:
        return int(str(self.rows("SELECT COUNT(*) FROM jobs WHERE state = 'running'")[0][0]))

    def rows(self, sql: str) -> list[tuple[object, ...]]:
        return read_pg(self.db, sql) if isinstance(self.db, str) else read_db(self.db, sql)


@pytest.fixture(params=["sqlite", "postgres"])
def store_kind(request: pytest.FixtureRequest) -> str:
    """The crash suite runs on both stores."""
    return str(request.param)


@pytest.fixture
async def crash(tmp_path: Path, storage: dict[str, Any]) -> AsyncIterator[Crash]:
    sim = TelegramSimulator(token=TOKEN, time_scale=0.02)
    await sim.start()
    for chat in CHATS:
        sim.add_chat(chat, title=f"group {chat}" if chat < 0 else "")
    backend = A1111Simulator(seconds_per_step=0.03, model_load_seconds=0.05)
    url = await backend.start()
    data_dir = tmp_path / "data"
    pg_url = storage.get("storage", {}).get("url")
    extra = f'[storage]\nurl = "{pg_url}"\n' if pg_url else ""
    config = write_config(tmp_path / "imagebridge.toml", data_dir, url, sim, extra)
    # The bot paces itself on the simulator's clock (0.02), with room for loopback jitter: on Telegram's own clock a
    # group's 20 messages a minute made it wait up to a minute for room, longer than these tests wait (WITHIN).
    # These runs kill the bot on purpose up to 9 times: a job running at max_attempts of those kills would end
    # failed, as one that crashes the bot does (bot/engine.py give_up).
    env = {
        "TELEGRAM_TOKEN": TOKEN,
        "IMAGEBRIDGE_TELEGRAM__FLOOD_TIME_SCALE": "0.03",
        "IMAGEBRIDGE_LIMITS__MAX_ATTEMPTS": "10",
    }
    bot = BotProcess(config=config, log_dir=tmp_path, env=env)
    bench = Crash(sim=sim, backend=backend, bot=bot, db=pg_url or data_dir / "imagebridge.sqlite3")
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
    # A message to a chat never overtakes an upload in flight there (adapters/telegram/calls.py), so while the gate
    # holds a result's photo (step 3) the answer to a new command in that chat waits for the upload's timeout:
    # 120 s by default, longer than WITHIN; 10 s here.
    crash.bot.env["IMAGEBRIDGE_TELEGRAM__UPLOAD_TIMEOUT_SECONDS"] = "10"

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
    figures = (
        f"restarts={crash.bot.runs - 1} jobs={len(jobs)} queued@kill1={queued_at_kill} "
        f"running@kill2={running_at_kill} stored-undelivered@kill3={stored_not_delivered[0][0]} "
        f"delivered={len(delivered)} duplicates={sum(count - 1 for count in delivered.values() if count > 1)} "
        f"ledger={ledger}"
    )
    print(f"\ncrash figures (kills while queued, running and delivering): {figures}")
    log.warning("crash figures: %s", figures)
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


# ---- the polling edge: killed within milliseconds of getUpdates answering ------------------------------------

EDGE_RUNS = int(os.environ.get("CRASH_EDGE_RUNS", "1"))
FAST_KILLS_MS = (1, 3, 6, 10, 20)  # after getUpdates answers a batch: the window before the jobs are written
SLOW_ADMIN_KILLS_MS = (15, 60, 150)  # with getChatMember answering after 0.5 s
SLOW_ADMIN_SECONDS = 0.5
REPLAYED = re.compile(r"replaying (\d+) telegram command")


def arm_kill(crash: Crash, delay_ms: float, first_update: int) -> None:
    """SIGKILL the bot `delay_ms` after the simulator answers a getUpdates holding `first_update` or a later one."""
    process, sim = crash.bot.process, crash.sim
    assert process is not None
    loop = asyncio.get_running_loop()

    def kill() -> None:
        if process.poll() is None:
            process.send_signal(signal.SIGKILL)

    def armed(updates: list[dict[str, Any]]) -> None:
        if max(int(u["update_id"]) for u in updates) >= first_update:
            sim.polls.on_return = None
            loop.call_later(delay_ms / 1000, kill)

    sim.polls.on_return = armed


async def edge_round(crash: Crash, delay_ms: float, chats: tuple[int, ...], slow_admin: bool) -> None:
    """Start the bot, send one command per chat, kill the bot just after it fetched them; wait until it is gone."""
    sim = crash.sim
    sim.member_lookup_seconds = SLOW_ADMIN_SECONDS if slow_admin else 0.0
    await crash.start_bot()
    arm_kill(crash, delay_ms, sim._update_id + 1)
    for chat in chats:
        crash.sent += 1
        user = CHATS[chat][crash.sent % len(CHATS[chat])]
        sent = await sim.send_text(chat, user, f"/imagine edge job {crash.sent} --steps 8 --seed {crash.sent}")
        kind = "slow_admin" if slow_admin else "private" if chat > 0 else "group"
        crash.kinds[(str(chat), str(sent.message_id))] = kind
    try:
        await crash.bot.wait(WITHIN)
    finally:
        sim.polls.on_return = None


def edge_figures(crash: Crash) -> dict[str, int]:
    """Commands lost, results lost and duplicates, from what the chats show and what the database holds."""
    commands = {
        (str(m.chat_id), str(m.message_id))
        for m in crash.sim.messages.values()
        if not m.from_bot and (m.text or "").startswith("/imagine")
    }
    jobs = crash.rows("SELECT id, state, delivery, destination FROM jobs")
    per_message = Counter((json.loads(str(d))["channel_id"], json.loads(str(d))["source_message_id"]) for *_, d in jobs)
    delivered = deliveries(crash.sim)
    lost = Counter(crash.kinds.get(key, "other") for key in commands - set(per_message))
    sent = Counter(crash.kinds.values())
    return {
        "commands": len(commands),
        "commands_lost": len(commands - set(per_message)),
        **{f"lost_{kind}": lost[kind] for kind in ("private", "group", "slow_admin")},
        **{f"sent_{kind}": sent[kind] for kind in ("private", "group", "slow_admin")},
        "duplicate_jobs": sum(n - 1 for n in per_message.values() if n > 1),
        "results_lost": sum(1 for job_id, *_ in jobs if delivered[str(job_id)] == 0),
        "duplicate_results": sum(n - 1 for n in delivered.values() if n > 1),
        "updates_redelivered": crash.sim.polls.redelivered,
        "replayed_from_inbox": sum(int(n) for n in REPLAYED.findall(crash.bot.output())),
        "repeats_skipped": crash.bot.output().count("was received before; not handled again"),
    }


@pytest.mark.parametrize("run", range(EDGE_RUNS))
async def test_kill_at_the_polling_edge_loses_no_command(crash: Crash, run: int) -> None:
    private, groups = (11, 12), (-2001, -2002)
    kills = 0
    for delay in FAST_KILLS_MS:
        await edge_round(crash, delay, (*private, *groups), slow_admin=False)
        kills += 1
    for delay in SLOW_ADMIN_KILLS_MS:
        await edge_round(crash, delay, (*groups, groups[0]), slow_admin=True)
        kills += 1
    crash.sim.member_lookup_seconds = 0.0
    await crash.start_bot()
    with contextlib.suppress(TimeoutError):  # the figures below say what is missing
        await crash.sim.wait_for(lambda: len(deliveries(crash.sim)) >= crash.sent, WITHIN)
    await crash.bot.terminate()
    figures = edge_figures(crash)
    line = " ".join(f"{name}={value}" for name, value in figures.items())
    print(f"\npolling-edge crash figures (run {run + 1} of {EDGE_RUNS}, {kills} kills): {line}")
    log.warning("polling-edge crash figures: kills=%d %s", kills, line)
    assert figures["commands"] == crash.sent
    assert figures["commands_lost"] == 0, "a command Telegram was told we received never became a job"
    assert figures["duplicate_jobs"] == 0, "a command became two jobs"
    assert figures["results_lost"] == 0, "a job's result never arrived"
