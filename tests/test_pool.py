"""The backend pool: failover mid-job, waiting while every backend is down, checkpoint affinity."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from adapters.backends.a1111 import A1111Backend
from bot.app import App, build_app
from bot.models import Job, JobState
from bot.pool import PoolPolicy, check
from bot.replies import Reply
from commands.dispatch import dispatch_text
from simulators.a1111 import A1111Simulator
from tests.conftest import invocation, make_settings
from tests.fakes import RecordingOutbound

pytestmark = pytest.mark.backends

SD15 = "v1-5-pruned-emaonly.safetensors [6ce0161689]"
SDXL = "sd_xl_base_1.0.safetensors [31e35c80fc]"
FAST = PoolPolicy(health_delays=(0.05,), check_interval_seconds=0.2)


class WatchingOutbound(RecordingOutbound):
    """A RecordingOutbound whose status edits can be awaited."""

    def __init__(self) -> None:
        super().__init__()
        self.changed = asyncio.Condition()

    async def update_status(self, job: Job, reply: Reply) -> None:
        await super().update_status(job, reply)
        async with self.changed:
            self.changed.notify_all()

    async def status_containing(self, job_id: str, text: str) -> None:
        def seen() -> bool:
            return any(text in reply.text for jid, reply in self.statuses if jid == job_id)

        async with asyncio.timeout(5), self.changed:
            await self.changed.wait_for(seen)


Pool = Callable[..., Awaitable[tuple[App, WatchingOutbound, list[A1111Simulator]]]]


@pytest.fixture
async def pool(tmp_path: Path) -> AsyncIterator[Pool]:
    apps: list[App] = []
    sims: list[A1111Simulator] = []

    async def factory(
        *sim_kwargs: dict[str, Any], start: bool = True
    ) -> tuple[App, WatchingOutbound, list[A1111Simulator]]:
        started = [A1111Simulator(flavour="forge", model_load_seconds=0.01, **kw) for kw in sim_kwargs]
        urls = [await sim.start() for sim in started]
        sims.extend(started)
        configs = {f"gpu{i}": {"kind": "forge", "url": url} for i, url in enumerate(urls)}
        settings = make_settings(tmp_path / "data", backends=configs)
        backends = [
            A1111Backend(f"gpu{i}", url, kind="forge", poll_interval_seconds=0.05) for i, url in enumerate(urls)
        ]
        outbound = WatchingOutbound()
        app = await build_app(settings, [outbound], backends=backends)
        app.engine.pool.policy = FAST
        if start:
            await app.start()
        apps.append(app)
        return app, outbound, started

    yield factory
    for app in apps:
        await app.stop()
    for sim in sims:
        await sim.stop()


async def imagine(app: App, text: str, user: str = "u1") -> str:
    reply = await dispatch_text(app.services, invocation(user=user), text)
    assert reply is not None and reply.job_id, reply
    return reply.job_id


async def finished(app: App, job_id: str) -> None:
    async with asyncio.timeout(15):
        await app.engine.finished_event(job_id).wait()


async def test_backend_stopped_mid_job_the_other_finishes_it(pool: Pool) -> None:
    app, outbound, sims = await pool({"seconds_per_step": 0.05}, {"seconds_per_step": 0.05})
    job_id = await imagine(app, "/imagine a lighthouse --preset sd15")
    waits = [asyncio.create_task(sim.running.wait()) for sim in sims]
    async with asyncio.timeout(10):
        done, pending = await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
    for task in pending:
        task.cancel()
    dead = sims[waits.index(next(iter(done)))]
    other = sims[1 - sims.index(dead)]
    await dead.stop()
    await finished(app, job_id)
    job = await app.services.store.get(job_id)
    assert job is not None and job.state is JobState.SUCCEEDED
    assert job.backend == f"gpu{sims.index(other)}"
    assert outbound.delivered_ids() == [job_id]  # exactly one result
    assert other.completed_jobs == 1
    dead_name = f"gpu{sims.index(dead)}"
    await outbound.status_containing(job_id, f"moved here after {dead_name} failed")


async def test_all_backends_down_jobs_wait_and_complete_when_one_returns(pool: Pool) -> None:
    app, outbound, sims = await pool({}, {}, start=False)
    port = int(sims[0].url.rsplit(":", 1)[1])
    for sim in sims:
        await sim.stop()
    await app.start()
    for worker in app.engine.workers:  # the same check each worker runs as it starts
        await check(worker)
    assert app.engine.pool.all_down()
    job_id = await imagine(app, "/imagine a quiet harbour --preset sd15")
    await outbound.status_containing(job_id, "Every image backend is down")
    job = await app.services.store.get(job_id)
    assert job is not None and job.state is JobState.QUEUED
    await sims[0].start(port=port)
    await finished(app, job_id)
    job = await app.services.store.get(job_id)
    assert job is not None and job.state is JobState.SUCCEEDED and job.backend == "gpu0"
    assert outbound.delivered_ids() == [job_id]


async def test_affinity_sends_jobs_to_the_backend_holding_their_checkpoint(pool: Pool) -> None:
    app, _, sims = await pool(
        {"checkpoints": [SD15, SDXL], "seconds_per_step": 0.01},
        {"checkpoints": [SDXL, SD15], "seconds_per_step": 0.01},
        start=False,
    )
    jobs = {
        await imagine(app, "/imagine an xl cat --preset sdxl", user="a"): "gpu1",
        await imagine(app, "/imagine an sd cat --preset sd15", user="b"): "gpu0",
    }
    await app.start()
    for job_id in jobs:
        await finished(app, job_id)
    for job_id, backend in jobs.items():
        job = await app.services.store.get(job_id)
        assert job is not None and job.state is JobState.SUCCEEDED and job.backend == backend
    assert [sim.model_switches for sim in sims] == [0, 0]
