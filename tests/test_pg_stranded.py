"""Several processes on one PostgreSQL: a job no backend of any process can run fails (refunded, once), a request
another process's backend can run is accepted and runs there, and ETAs count another process's backend only for
what it fits. Two Apps stand for two processes (each its own engine, board rows and LISTEN connections), our A1111
client against one A1111 simulator per backend (what each server has is what its list endpoints report), and what
the user sees through the real python-telegram-bot against the Bot API simulator; the first process polls."""

from __future__ import annotations

import asyncio
import io
import logging
import re
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
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
from bot.jobs import BackendState
from bot.models import DeliveryState, JobState
from bot.pool import check
from bot.shared_queue import SharedEngine
from commands.dispatch import dispatch_text
from simulators.a1111 import A1111Simulator
from simulators.a1111_catalog import CheckpointCatalog
from simulators.telegram import ChatMessage, TelegramSimulator
from storage.postgres.claims import PgClaims
from storage.postgres.db import PgDatabase
from storage.postgres.jobs import PgJobStore
from tests.conftest import invocation, make_settings
from tests.postgres_support import PostgresServer, drop_database, fresh_database
from tests.test_pg_claims import make_job
from tests.test_pg_views import PRIVATE, sent, telegram_config

pytestmark = [pytest.mark.backends, pytest.mark.telegram]

SD15 = "v1-5-pruned-emaonly.safetensors [6ce0161689]"
SDXL = "sd_xl_base_1.0.safetensors [31e35c80fc]"
SMALL = {"base_resolution": 256}
PRESETS: dict[str, Any] = {"sd15": SMALL, "sdxl": SMALL}
MISSING = "the checkpoint sd_xl_base_1.0.safetensors is missing"


@dataclass
class Process:
    """One bot process: its App and the simulator behind each of its backends (by backend name)."""

    app: App
    sims: dict[str, A1111Simulator]

    @property
    def engine(self) -> SharedEngine:
        assert isinstance(self.app.engine, SharedEngine)
        return self.app.engine

    async def board_shows(self, predicate: Callable[[list[BackendState]], bool], within: float = 30) -> None:
        """Until this process's view of the other processes' backends satisfies `predicate`."""
        engine = self.engine
        async with asyncio.timeout(within), engine.board_changed:
            await engine.board_changed.wait_for(lambda: predicate(engine.remote_backends()))


Launch = Callable[..., Awaitable[Process]]


@pytest.fixture
async def telegram() -> AsyncIterator[TelegramSimulator]:
    sim = TelegramSimulator(time_scale=0.02)
    await sim.start()
    sim.add_chat(PRIVATE)
    yield sim
    await sim.stop()


@pytest.fixture
async def launch(postgres_server: PostgresServer, telegram: TelegramSimulator, tmp_path: Path) -> AsyncIterator[Launch]:
    url = await fresh_database(postgres_server)
    async with AsyncExitStack() as stack:

        async def start(
            name: str,
            backends: dict[str, list[str]],
            *,
            polls: bool = False,
            hold: bool = False,
            booting: bool = False,
            **settings: Any,
        ) -> Process:
            sims, clients, configs = {}, [], {}
            for backend, checkpoints in backends.items():
                sim = A1111Simulator(checkpoints=checkpoints, seconds_per_step=0.001, model_load_seconds=0.0)
                address = f"http://127.0.0.1:{free_port()}" if booting else await sim.start()  # booting: not up yet
                sim.url = address
                stack.push_async_callback(sim.stop)
                if hold:  # every generation waits until the test ends
                    await sim.lock.acquire()
                    stack.callback(sim.lock.release)
                sims[backend] = sim
                clients.append(A1111Backend(backend, address, kind="a1111", poll_interval_seconds=0.05))
                configs[backend] = {"kind": "a1111", "url": address}
            overrides = {"presets": PRESETS, **settings}
            config = make_settings(tmp_path / name, storage={"url": url}, backends=configs or {}, **overrides)
            platform = None
            outbound: Any = ConsoleOutbound(stream=io.StringIO())
            if polls:
                platform = create(config, SecretStr(telegram.token), telegram_config(telegram))
                outbound = platform.outbound
            app = await build_app(config, [outbound], backends=clients)
            await app.start()
            stack.push_async_callback(app.stop)
            for worker in app.engine.workers if not booting else []:  # its first check, done before any command
                await check(worker)
            if platform is not None:
                await platform.start(app.services)
                stack.push_async_callback(platform.stop)
            return Process(app, sims)

        yield start
    await drop_database(postgres_server, url)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def boot(process: Process) -> None:
    """Its servers come up; each worker's next health check (done here, as its retry would) finds them."""
    for sim in process.sims.values():
        await sim.start(port=int(sim.url.rsplit(":", 1)[1]))
    for worker in process.engine.workers:
        assert await check(worker)


async def answer(telegram: TelegramSimulator, text: str, marker: str, within: float = 10) -> ChatMessage:
    """Send a command in the private chat; the bot's first message after it that contains `marker`."""
    message = await telegram.send_text(PRIVATE, PRIVATE, text)
    found: list[ChatMessage] = []

    def answered() -> bool:
        after = [m for m in telegram.visible(PRIVATE) if m.message_id > message.message_id]
        found[:] = [m for m in after if marker in (m.text or "")]
        return bool(found)

    await telegram.wait_for(answered, within)
    return found[0]


async def used_today(telegram: TelegramSimulator) -> float:
    """What /quota tells the user they used today."""
    reply = await answer(telegram, "/quota", "Quota for")
    match = re.search(r"You: ([0-9.]+) ", reply.text or "")
    assert match, reply.text
    return float(match.group(1))


def failures(telegram: TelegramSimulator, job_id: str) -> list[ChatMessage]:
    return [m for m in telegram.visible(PRIVATE) if f"Job {job_id} failed" in (m.text or "")]


def answered_on_board(count: int) -> Callable[[list[BackendState]], bool]:
    """The other processes' `count` backends are on the board, each having answered its first health check."""
    return lambda states: len(states) == count and all(s.fit is not None and s.fit.answered for s in states)


async def test_a_job_no_backend_of_either_process_can_run_any_more_fails_once_and_is_refunded(
    launch: Launch, telegram: TelegramSimulator, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="bot.shared_queue")
    one = await launch("one", {"gpu-a": [SD15, SDXL]}, polls=True, hold=True)
    two = await launch("two", {"gpu-b": [SD15, SDXL]}, hold=True)
    await one.board_shows(answered_on_board(1))
    await sent(telegram, "/imagine a fox --preset sd15")
    await sent(telegram, "/imagine a hen --preset sd15")
    for sim in (*one.sims.values(), *two.sims.values()):  # one held on each backend: the next job waits
        await sim._wait(lambda sim=sim: sum(r.path.endswith("/txt2img") for r in sim.requests) >= 1, 15)
    before = await used_today(telegram)
    owl = await sent(telegram, "/imagine an owl --preset sdxl")
    assert await used_today(telegram) > before, "the queued job holds its cost"

    for process in (one, two):  # SDXL deleted on both servers; the next health check of each sees it
        for sim in process.sims.values():
            sim.catalog = CheckpointCatalog([SD15])
        for worker in process.engine.workers:
            await check(worker)
    await telegram.wait_for(lambda: bool(failures(telegram, owl)), 20)

    text = failures(telegram, owl)[0].text or ""
    assert "No backend can run preset sdxl as written any more" in text, text
    assert f"gpu-a: {MISSING}" in text and f"gpu-b: {MISSING}" in text, text
    assert "Nothing was charged" in text
    assert await used_today(telegram) == pytest.approx(before), "refunded"
    for process in (one, two):  # each judges again (as after its next read of the board): nothing more happens
        await process.engine.fail_stranded()
    job = await one.app.services.store.get(owl)
    assert job is not None and job.state is JobState.FAILED
    ended = [r for r in caplog.records if owl in r.getMessage() and "can run it any more" in r.getMessage()]
    assert len(ended) == 1, [r.getMessage() for r in ended]
    assert len(failures(telegram, owl)) == 1
    assert await used_today(telegram) == pytest.approx(before)


async def test_a_request_only_the_other_process_can_run_is_accepted_and_runs_there(
    launch: Launch, telegram: TelegramSimulator
) -> None:
    one = await launch("one", {"gpu-a": [SD15]}, polls=True)
    two = await launch("two", {"gpu-b": [SD15, SDXL]})
    await one.board_shows(answered_on_board(1))
    owl = await sent(telegram, "/imagine an owl --preset sdxl")  # gpu-a lacks SDXL; gpu-b has it

    await telegram.wait_for(lambda: any(m.photo is not None for m in telegram.visible(PRIVATE)), 20)
    job = await one.app.services.store.get(owl)
    assert job is not None and job.state is JobState.SUCCEEDED and job.backend == "gpu-b"
    assert not failures(telegram, owl)
    assert not [r for r in one.sims["gpu-a"].requests if r.path.endswith("/txt2img")]
    assert [r for r in two.sims["gpu-b"].requests if r.path.endswith("/txt2img")]


async def test_a_request_no_process_can_run_is_refused_with_every_backends_reason(
    launch: Launch, telegram: TelegramSimulator
) -> None:
    one = await launch("one", {"gpu-a": [SD15]}, polls=True)
    await launch("two", {"gpu-b": [SD15]})
    await one.board_shows(answered_on_board(1))
    before = await used_today(telegram)

    refused = await answer(telegram, "/imagine an owl --preset sdxl", "No backend can run")
    text = refused.text or ""
    assert "nothing was queued or charged" in text, text
    assert f"gpu-a: {MISSING}" in text and f"gpu-b: {MISSING}" in text, text
    assert await used_today(telegram) == pytest.approx(before)


async def test_a_job_every_backend_gave_back_for_a_missing_lora_fails_refunded(
    launch: Launch, telegram: TelegramSimulator
) -> None:
    one = await launch("one", {"gpu-a": [SDXL]}, polls=True)
    await launch("two", {"gpu-b": [SDXL]})  # neither server lists the LoRA (its /loras is empty)
    await one.board_shows(answered_on_board(1))
    before = await used_today(telegram)
    owl = await sent(telegram, "/imagine an owl --preset sdxl --lora detail:0.8")  # the preset fits both

    await telegram.wait_for(lambda: bool(failures(telegram, owl)), 30)  # each gave it back; then it fails
    text = failures(telegram, owl)[0].text or ""
    assert "No backend can run preset sdxl as written any more" in text, text
    assert "the LoRAs add-detail-xl are missing" in text and "gave it back" in text, text
    assert await used_today(telegram) == pytest.approx(before)


async def test_a_job_only_a_drained_backend_of_the_other_process_can_run_says_so(
    launch: Launch, telegram: TelegramSimulator
) -> None:
    admins = {"access": {"bot_admins": ["console:root"]}}
    one = await launch("one", {"gpu-a": [SD15]}, polls=True, **admins)
    two = await launch("two", {"gpu-b": [SD15, SDXL]}, **admins)
    drained = await dispatch_text(two.app.services, invocation(user="root", is_admin=True), "/admin drain gpu-b")
    assert drained is not None and "drained" in drained.text, drained
    await one.board_shows(lambda states: answered_on_board(1)(states) and states[0].drained)

    owl = await sent(telegram, "/imagine an owl --preset sdxl")
    waiting = "No backend that can run this job is taking jobs right now (gpu-b: taken out of rotation by an admin"

    def told() -> bool:
        return any(waiting in (m.text or "") and owl in (m.text or "") for m in telegram.visible(PRIVATE))

    await telegram.wait_for(told, 10)
    assert not any("gpu-a:" in (m.text or "") for m in telegram.visible(PRIVATE)), "gpu-a cannot run it: not named"


async def test_a_job_waits_while_a_backend_of_the_other_process_has_not_answered(
    launch: Launch, telegram: TelegramSimulator
) -> None:
    one = await launch("one", {"gpu-a": [SD15]}, polls=True)
    two = await launch("two", {"gpu-b": [SD15]}, booting=True)  # its server is not up yet: it may have SDXL
    await one.board_shows(lambda states: len(states) == 1 and states[0].fit is not None)
    before = await used_today(telegram)
    owl = await sent(telegram, "/imagine an owl --preset sdxl")
    for process in (one, two):  # each judges (as after a read of the board): gpu-b has not answered, so it waits
        await process.engine.fail_stranded()
    job = await one.app.services.store.get(owl)  # queued, or running a moment where gpu-a claims it to give it back
    assert job is not None and job.state is not JobState.FAILED and not failures(telegram, owl)

    await boot(two)  # gpu-b answers: it has no SDXL either
    await telegram.wait_for(lambda: bool(failures(telegram, owl)), 20)
    text = failures(telegram, owl)[0].text or ""
    assert f"gpu-a: {MISSING}" in text and f"gpu-b: {MISSING}" in text, text
    assert await used_today(telegram) == pytest.approx(before)


async def test_a_restart_of_the_only_process_that_can_run_a_job_does_not_fail_it(
    launch: Launch, telegram: TelegramSimulator
) -> None:
    one = await launch("one", {"gpu-a": [SD15]}, polls=True)
    two = await launch("two", {"gpu-b": [SD15, SDXL]}, hold=True)
    await one.board_shows(answered_on_board(1))
    fox = await sent(telegram, "/imagine a fox --preset sdxl")
    await two.sims["gpu-b"]._wait(lambda: bool(two.sims["gpu-b"].requests), 15)
    owl = await sent(telegram, "/imagine an owl --preset sdxl")  # waits for gpu-b

    await two.app.stop()  # the process restarts: its rows leave the board, its running job is queued again
    await one.board_shows(lambda states: not states)
    await one.engine.fail_stranded()  # gpu-a cannot run SDXL and gpu-b is gone: but it may be back in a moment
    assert not failures(telegram, fox) and not failures(telegram, owl)

    await launch("three", {"gpu-b": [SD15, SDXL]})  # back: it runs both
    await telegram.wait_for(lambda: sum(m.photo is not None for m in telegram.visible(PRIVATE)) == 2, 30)
    assert not failures(telegram, fox) and not failures(telegram, owl)


def eta_seconds(text: str) -> int:
    match = re.search(r"about (?:(\d+) min ?)?(?:(\d+) s)?", text)
    assert match and any(match.groups()), text
    return int(match.group(1) or 0) * 60 + int(match.group(2) or 0)


async def test_the_eta_counts_another_process_backend_only_for_the_presets_it_fits(
    launch: Launch, telegram: TelegramSimulator
) -> None:
    long = {"sd15": SMALL, "sdxl": {"max_steps": 400}}  # SDXL at 1024 px: 400 steps are about a minute's estimate
    one = await launch("one", {}, polls=True, presets=long)  # takes the commands, runs nothing
    await launch("two", {"gpu-b": [SD15, SDXL], "gpu-c": [SD15]}, hold=True, presets=long)
    await one.board_shows(answered_on_board(2))
    fox = await sent(telegram, "/imagine a fox --preset sdxl --steps 400")
    await one.board_shows(lambda states: any(s.name == "gpu-b" and s.current and s.current.id == fox for s in states))
    hen = await sent(telegram, "/imagine a hen --preset sd15 --steps 2")  # gpu-c's: its estimate runs out at once
    await one.board_shows(lambda states: any(s.name == "gpu-c" and s.current and s.current.id == hen for s in states))

    second = await answer(telegram, "/imagine an owl --preset sdxl --steps 10", "Queued")
    # gpu-c is as good as free but has no SDXL: the owl waits for gpu-b's fox (about a minute)
    assert eta_seconds(second.text or "") >= 30, second.text


async def test_two_processes_ending_the_same_stranded_job_end_it_once(postgres_server: PostgresServer) -> None:
    url = await fresh_database(postgres_server)
    dbs = [await PgDatabase.open(SecretStr(url), pool_size=2) for _ in range(2)]
    try:
        job, marked = make_job("u1", "s1", 1.0), make_job("u1", "s1", 1.0)
        await PgJobStore(dbs[0]).create_all([job, marked], None)
        claims = [PgClaims(db) for db in dbs]
        taken = await claims[0].claim(["a"], "p1", 60, fit_marks=["a#now"])
        assert taken is not None and taken.id == job.id
        await claims[0].requeue(job.id, "p1", 0, unfit="a#now")  # gpu a gave it back as it is now
        assert await claims[1].strand([(marked.id, ["a#now"], "no")]) == [], "never given back by a: waits for a"
        assert await claims[1].strand([(job.id, ["a#now", "b#now"], "no")]) == [], "b may still run it"

        both = await asyncio.gather(*(c.strand([(job.id, ["a#now"], f"ended by {n}")]) for n, c in enumerate(claims)))
        assert sorted(len(ended) for ended in both) == [0, 1], "ended by exactly one process"
        ended = next(ended for ended in both if ended)[0]
        stored = await PgJobStore(dbs[0]).get(job.id)
        assert stored is not None and stored.state is JobState.FAILED and stored.error == ended.error
        assert stored.delivery is DeliveryState.PENDING, "ended and waiting to be told, whoever sends it"
    finally:
        for db in dbs:
            await db.close()
        await drop_database(postgres_server, url)
