"""Backends, drains and pauses across bot processes on one PostgreSQL, and a drain kept across a restart.

Two Apps in one test process stand for two bot processes (each its own engine, LISTEN connections and owner
id), each with an A1111 backend named "alpha" and the second also with "beta", real A1111 clients against
three simulators; what each backend ran is counted from the simulators' own request logs. Commands go
through the console path (`dispatch_text`), as the console session sends them. A third process, for the
"gone" case, is a real `imagebridge run` killed with SIGKILL; /healthz lists it meanwhile (over HTTP).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from adapters.ops import OpsServer
from bot.app import App, build_app
from bot.jobs import BackendState
from bot.models import JobState
from bot.pool import check
from bot.shared_queue import SharedEngine
from commands.dispatch import dispatch_text
from simulators.a1111 import A1111Simulator
from tests.conftest import invocation, make_settings
from tests.fakes import RecordingOutbound
from tests.postgres_support import database_url  # noqa: F401 (the `url` fixture)
from tests.reliability_support import BotProcess

pytestmark = pytest.mark.backends

SD15 = "v1-5-pruned-emaonly.safetensors [6ce0161689]"
ROOT = {"user": "root"}  # console:root is the bot admin below


def settings_for(data_dir: Path, sims: dict[str, A1111Simulator], storage: dict[str, Any]) -> Any:
    backends: dict[str, dict[str, object]] = {"local": {"enabled": False}}
    for name, sim in sims.items():
        backends[name] = {"kind": "a1111", "url": sim.url, "poll_interval_seconds": 0.05}
    return make_settings(
        data_dir,
        backends=backends,
        presets={"sd15": {"base_resolution": 256}},
        quota={"enabled": False},
        access={"bot_admins": ["console:root"]},
        **storage,
    )


async def started(data_dir: Path, sims: dict[str, A1111Simulator], storage: dict[str, Any]) -> App:
    app = await build_app(settings_for(data_dir, sims, storage), [RecordingOutbound()])
    await app.start()
    for worker in app.engine.workers:
        await check(worker)
    return app


@dataclass
class Pair:
    """Two processes: `one` runs alpha (sim a1), `two` runs alpha (sim a2) and beta (sim b)."""

    one: App
    two: App
    sims: dict[str, A1111Simulator]

    @property
    def apps(self) -> list[App]:
        return [self.one, self.two]


@pytest.fixture
async def sims() -> AsyncIterator[dict[str, A1111Simulator]]:
    made = {name: A1111Simulator(checkpoints=[SD15], model_load_seconds=0.01) for name in ("a1", "a2", "b")}
    for sim in made.values():
        await sim.start()
    yield made
    for sim in made.values():
        await sim.stop()


@pytest.fixture
async def pair(sims: dict[str, A1111Simulator], url: str, tmp_path: Path) -> AsyncIterator[Pair]:
    storage = {"storage": {"url": url}}
    one = await started(tmp_path / "one", {"alpha": sims["a1"]}, storage)
    two = await started(tmp_path / "two", {"alpha": sims["a2"], "beta": sims["b"]}, storage)
    yield Pair(one, two, sims)
    for app in (one, two):
        await app.stop()


def generations(sim: A1111Simulator) -> int:
    return sum(1 for r in sim.requests if r.method == "POST" and r.path == "/sdapi/v1/txt2img")


async def command(app: App, text: str, **who: Any) -> str:
    reply = await dispatch_text(app.services, invocation(**who), text)
    assert reply is not None
    return reply.text


async def submit(app: App, count: int, steps: int = 3, tag: str = "") -> list[str]:
    jobs = []
    for i in range(count):
        text = f"/imagine lighthouse {tag}{i} --preset sd15 --steps {steps}"
        reply = await dispatch_text(app.services, invocation(user=f"u{i}", server=f"s{i}"), text)
        assert reply is not None and reply.job_id, reply
        jobs.append(reply.job_id)
    return jobs


async def delivered(apps: list[App], jobs: list[str], within: float = 60) -> None:
    """Until every job's result was delivered by whichever process ran it; each one succeeded."""
    outbounds = [app.outbounds["console"] for app in apps]
    assert all(isinstance(outbound, RecordingOutbound) for outbound in outbounds)
    recorders: list[RecordingOutbound] = outbounds  # type: ignore[assignment]
    async with asyncio.timeout(within):
        while True:
            for recorder in recorders:
                recorder.delivered.clear()
            if set(jobs) <= {job_id for recorder in recorders for job_id in recorder.delivered_ids()}:
                break
            waits = [asyncio.ensure_future(recorder.delivered.wait()) for recorder in recorders]
            try:
                await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for wait in waits:
                    wait.cancel()
    for job_id in jobs:
        job = await apps[0].services.store.get(job_id)
        assert job is not None and job.state is JobState.SUCCEEDED, (job_id, job and job.error)


def shared(app: App) -> SharedEngine:
    assert isinstance(app.engine, SharedEngine)
    return app.engine


async def board_shows(app: App, predicate: Callable[[list[BackendState]], bool], within: float = 30) -> None:
    """Until this process's view of every process's backends satisfies `predicate`."""
    engine = shared(app)
    async with asyncio.timeout(within), engine.board_changed:
        await engine.board_changed.wait_for(lambda: predicate(engine.backends()))


def named(states: list[BackendState], name: str, process: str) -> BackendState | None:
    return next((s for s in states if s.name == name and s.process == process), None)


async def test_a_drain_sent_to_one_process_stops_that_backend_in_every_process(pair: Pair) -> None:
    one, two, sims = pair.one, pair.two, pair.sims
    owner_two = shared(two).owner
    await board_shows(one, lambda states: named(states, "beta", owner_two) is not None)

    answer = await command(one, "/admin drain ALPHA", is_admin=True, **ROOT)
    assert "Backend alpha is drained" in answer
    assert f"{shared(one).owner}: idle" in answer and f"{owner_two}: idle" in answer  # where it runs, per process
    before = {name: generations(sim) for name, sim in sims.items()}
    jobs = await submit(one, 4)
    await delivered(pair.apps, jobs)
    assert generations(sims["a1"]) == before["a1"], "the drained alpha of the process that was told ran a job"
    assert generations(sims["a2"]) == before["a2"], "the other process's alpha kept claiming after the drain"
    assert generations(sims["b"]) == before["b"] + 4

    for sim in sims.values():
        sim.seconds_per_step = 0.1
    [running] = await submit(one, 1, steps=30, tag="long ")
    await board_shows(one, lambda states: (beta := named(states, "beta", owner_two)) is not None
                      and beta.current is not None and beta.current.id == running)  # fmt: skip
    listing = await command(one, "/admin backends", is_admin=True, **ROOT)
    assert f"beta @ {owner_two} (a1111) · healthy · running {running}" in listing, listing
    assert f"alpha @ {owner_two} (a1111) · healthy, drained" in listing, listing
    for sim in sims.values():
        sim.seconds_per_step = 0.01
    await delivered(pair.apps, [running])

    assert "Backend alpha takes jobs again" in await command(two, "/admin undrain alpha", is_admin=True, **ROOT)
    assert "is drained" in await command(one, "/admin drain beta", is_admin=True, **ROOT)
    before = {name: generations(sim) for name, sim in sims.items()}
    for sim in sims.values():
        sim.seconds_per_step = 0.05  # each job long enough that an idle backend takes the next one
    jobs = await submit(one, 4, steps=10, tag="after ")
    await delivered(pair.apps, jobs)
    assert generations(sims["b"]) == before["b"]
    assert generations(sims["a2"]) > before["a2"], "the other process's alpha did not claim again after undrain"
    assert generations(sims["a1"]) + generations(sims["a2"]) == before["a1"] + before["a2"] + 4


async def test_a_pause_and_a_resume_in_one_process_reach_the_others_tickets(pair: Pair) -> None:
    one, two = pair.one, pair.two
    engine = shared(two)
    await command(one, "/admin pause", is_admin=True, user="boss")
    async with asyncio.timeout(30), engine.pauses_changed:
        await engine.pauses_changed.wait_for(lambda: engine.is_paused("console:s1"))
    ticket = await dispatch_text(two.services, invocation(), "/imagine a quiet lighthouse --preset sd15 --steps 3")
    assert ticket is not None and ticket.job_id and "paused by an admin" in ticket.text, ticket
    assert "queue of this server is paused" in await command(two, "/queue")

    await command(one, "/admin resume", is_admin=True, user="boss")
    async with asyncio.timeout(30), engine.pauses_changed:
        await engine.pauses_changed.wait_for(lambda: not engine.is_paused("console:s1"))
    assert "queue of this server is paused" not in await command(two, "/queue")
    await delivered(pair.apps, [ticket.job_id])


def worker_config(path: Path, url: str, sim: A1111Simulator) -> Path:
    path.write_text(
        f"""
data_dir = "{(path.parent / "gamma-data").as_posix()}"
default_preset = "sd15"

[storage]
url = "{url}"

[backends.gamma]
kind = "a1111"
url = "{sim.url}"
poll_interval_seconds = 0.05

[presets.sd15]
backend = "a1111"
checkpoint = "v1-5-pruned-emaonly.safetensors"
base_resolution = 256
""",
        "utf-8",
    )
    return path


async def ops_views(app: App) -> tuple[dict[str, Any], str]:
    """/healthz and /metrics of this process, over HTTP."""
    server = OpsServer(lambda: app.engine, dict, 0)
    await server.start()
    try:
        async with httpx.AsyncClient(base_url=server.url) as client:
            return (await client.get("/healthz")).json(), (await client.get("/metrics")).text
    finally:
        await server.stop()


async def test_a_killed_process_leaves_the_list(sims: dict[str, A1111Simulator], url: str, tmp_path: Path) -> None:
    one = await started(tmp_path / "one", {"alpha": sims["a1"]}, {"storage": {"url": url}})
    process = BotProcess(config=worker_config(tmp_path / "gamma.toml", url, sims["b"]), log_dir=tmp_path, env={})
    try:
        process.start()
        try:
            await board_shows(one, lambda states: any(s.name == "gamma" and s.remote for s in states), 60)
        except TimeoutError:
            pytest.fail(f"the worker process never showed its backend:\n{process.output()[-3000:]}")
        listing = await command(one, "/admin backends", is_admin=True, **ROOT)
        assert "gamma @ " in listing and "alpha @ " in listing
        health, metrics = await ops_views(one)
        assert {key.split(" @ ")[0] for key in health["backends"]} == {"alpha", "gamma"}, health
        assert 'backend="alpha"' in metrics and "gamma" not in metrics, "each process's /metrics: its own backends"
        await process.kill()  # SIGKILL: it cannot say goodbye; its connections close with it
        await board_shows(one, lambda states: not any(s.name == "gamma" for s in states))
        assert "gamma" not in await command(one, "/admin backends", is_admin=True, **ROOT)
    finally:
        await process.kill()
        await one.stop()


@pytest.mark.parametrize("store_kind", ["sqlite", "postgres"])
async def test_a_drained_backend_stays_drained_across_a_restart(
    sims: dict[str, A1111Simulator], storage: dict[str, Any], tmp_path: Path
) -> None:
    backends = {"alpha": sims["a1"], "beta": sims["b"]}
    app = await started(tmp_path / "data", backends, storage)
    try:
        assert "is drained" in await command(app, "/admin drain alpha", is_admin=True, **ROOT)
    finally:
        await app.stop()
    app = await started(tmp_path / "data", backends, storage)
    try:
        assert "alpha" in (listing := await command(app, "/admin backends", is_admin=True, **ROOT))
        assert "healthy, drained" in listing, listing
        await delivered([app], await submit(app, 3))
        assert (generations(sims["a1"]), generations(sims["b"])) == (0, 3)
        assert "takes jobs again" in await command(app, "/admin undrain alpha", is_admin=True, **ROOT)
    finally:
        await app.stop()
    app = await started(tmp_path / "data", backends, storage)
    try:
        assert not any(worker.drained for worker in app.engine.workers), "an undrain is kept too"
    finally:
        await app.stop()
