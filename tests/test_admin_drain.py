"""`/admin drain|undrain <backend>`: a drained backend finishes its running job and takes no new ones until
undrained; only the bot's admins may do it. Real A1111 clients against two simulators; the count of what each
backend ran comes from the simulators' own request logs."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from bot.app import App, build_app
from bot.models import JobState
from bot.pool import check
from commands.dispatch import dispatch_text
from simulators.a1111 import A1111Simulator
from tests.conftest import invocation, make_settings
from tests.fakes import RecordingOutbound

pytestmark = pytest.mark.backends

SD15 = "v1-5-pruned-emaonly.safetensors [6ce0161689]"
ROOT = {"user": "root"}  # console:root is the bot admin below


@dataclass
class Stand:
    app: App
    sims: dict[str, A1111Simulator]


@pytest.fixture
async def stand(tmp_path: Path) -> AsyncIterator[Stand]:
    sims = {name: A1111Simulator(checkpoints=[SD15], model_load_seconds=0.01) for name in ("alpha", "beta")}
    backends: dict[str, dict[str, object]] = {"local": {"enabled": False}}
    for name, sim in sims.items():
        backends[name] = {"kind": "a1111", "url": await sim.start(), "poll_interval_seconds": 0.05}
    settings = make_settings(
        tmp_path / "data",
        backends=backends,
        presets={"sd15": {"base_resolution": 256}},
        quota={"enabled": False},
        access={"bot_admins": ["console:root"]},
    )
    app = await build_app(settings, [RecordingOutbound()])
    await app.start()
    for worker in app.engine.workers:
        await check(worker)
    yield Stand(app, sims)
    await app.stop()
    for sim in sims.values():
        await sim.stop()


def generations(sim: A1111Simulator) -> int:
    return sum(1 for r in sim.requests if r.method == "POST" and r.path == "/sdapi/v1/txt2img")


async def admin(stand: Stand, text: str, **who: str) -> str:
    reply = await dispatch_text(stand.app.services, invocation(is_admin=True, **who), text)
    assert reply is not None
    return reply.text


async def submit(stand: Stand, count: int, steps: int = 3) -> list[str]:
    jobs = []
    for i in range(count):
        text = f"/imagine lighthouse {i} --preset sd15 --steps {steps}"
        reply = await dispatch_text(stand.app.services, invocation(user=f"u{i}", server=f"s{i}"), text)
        assert reply is not None and reply.job_id, reply
        jobs.append(reply.job_id)
    return jobs


async def finish(stand: Stand, jobs: list[str]) -> None:
    async with asyncio.timeout(30):
        for job_id in jobs:
            await stand.app.engine.finished_event(job_id).wait()
    for job_id in jobs:
        job = await stand.app.services.store.get(job_id)
        assert job is not None and job.state is JobState.SUCCEEDED, (job_id, job and job.error)


async def test_a_drained_backend_finishes_its_job_takes_no_more_until_undrained(stand: Stand) -> None:
    for sim in stand.sims.values():
        sim.seconds_per_step = 0.05
    first = await submit(stand, 1, steps=10)
    waits = {name: asyncio.ensure_future(sim.running.wait()) for name, sim in stand.sims.items()}
    done, pending = await asyncio.wait(waits.values(), timeout=10, return_when=asyncio.FIRST_COMPLETED)
    for task in pending:
        task.cancel()
    busy = next(name for name, task in waits.items() if task in done)
    other = next(name for name in stand.sims if name != busy)

    assert "is draining" in await admin(stand, f"/admin drain {busy.upper()}", **ROOT)
    assert "draining" in await admin(stand, "/admin backends", **ROOT)
    for sim in stand.sims.values():
        sim.seconds_per_step = 0.01
    await finish(stand, first)  # the running job is not interrupted
    worker = stand.app.engine.pool.named(busy)
    assert worker is not None
    await check(worker)  # a passing health check does not undo the drain
    await finish(stand, await submit(stand, 4))
    assert (generations(stand.sims[busy]), generations(stand.sims[other])) == (1, 4)
    assert f"{busy} (a1111) · healthy, drained" in await admin(stand, "/admin backends", **ROOT)

    assert "takes jobs again" in await admin(stand, f"/admin undrain {busy}", **ROOT)
    for sim in stand.sims.values():
        sim.seconds_per_step = 0.03  # each job long enough that an idle backend takes the next one
    await finish(stand, await submit(stand, 4))
    assert generations(stand.sims[busy]) > 1 and generations(stand.sims[other]) > 4
    assert generations(stand.sims[busy]) + generations(stand.sims[other]) == 9


async def test_only_bot_admins_drain_and_unknown_backends_are_named(stand: Stand) -> None:
    refused = await admin(stand, "/admin drain alpha", user="chatadmin")
    assert "Only the bot's own admins" in refused
    assert not any(worker.drained for worker in stand.app.engine.workers)
    unknown = await admin(stand, "/admin drain gamma", **ROOT)
    assert "There is no backend 'gamma'" in unknown and "alpha, beta" in unknown
    assert not any(worker.drained for worker in stand.app.engine.workers)
    await finish(stand, await submit(stand, 2))
