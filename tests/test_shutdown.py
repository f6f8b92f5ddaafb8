"""Graceful shutdown: nothing new starts, running jobs finish within the grace period or are requeued."""

from __future__ import annotations

import asyncio
from pathlib import Path

from bot.app import build_app
from bot.models import DeliveryState, Job, JobState
from bot.replies import Reply, Tone
from commands.dispatch import dispatch_text
from tests.conftest import invocation, make_settings
from tests.fakes import FakeBackend, RecordingOutbound


async def test_running_job_finishes_and_is_delivered_during_the_grace_period(tmp_path: Path) -> None:
    backend = FakeBackend(hold=True)
    outbound = RecordingOutbound()
    app = await build_app(make_settings(tmp_path / "data"), [outbound], backends=[backend])
    await app.start()
    running = await dispatch_text(app.services, invocation(), "/imagine finishing")
    waiting = await dispatch_text(app.services, invocation(user="u2"), "/imagine waiting")
    assert running and waiting and running.job_id and waiting.job_id
    await asyncio.wait_for(backend.started.wait(), 5)
    drain = asyncio.create_task(app.engine.drain(grace_seconds=10))
    refused = await dispatch_text(app.services, invocation(), "/imagine too late")
    assert refused is not None and refused.tone is Tone.ERROR and "restarting" in refused.text
    backend.release.set()
    await asyncio.wait_for(drain, 10)
    await app.stop()
    assert outbound.delivered_ids() == [running.job_id]  # the waiting job did not start
    check = await build_app(make_settings(tmp_path / "data"), [], backends=[])
    try:
        done = await check.services.store.get(running.job_id)
        left = await check.services.store.get(waiting.job_id)
        assert done is not None and done.state is JobState.SUCCEEDED and done.delivery is DeliveryState.DELIVERED
        assert left is not None and left.state is JobState.QUEUED
    finally:
        await check.stop()


async def test_job_still_running_after_the_grace_period_is_requeued_and_runs_after_restart(tmp_path: Path) -> None:
    backend = FakeBackend(hold=True)
    app = await build_app(make_settings(tmp_path / "data"), [RecordingOutbound()], backends=[backend])
    await app.start()
    reply = await dispatch_text(app.services, invocation(), "/imagine slow")
    assert reply is not None and reply.job_id
    await asyncio.wait_for(backend.started.wait(), 5)
    await app.engine.drain(grace_seconds=0.05)
    await app.stop()
    assert backend.interrupted == [reply.job_id]

    outbound = RecordingOutbound()
    again = await build_app(make_settings(tmp_path / "data"), [outbound], backends=[FakeBackend()])
    await again.start()
    try:
        await asyncio.wait_for(again.engine.finished_event(reply.job_id).wait(), 5)
        assert outbound.delivered_ids() == [reply.job_id]
        job = await again.services.store.get(reply.job_id)
        assert job is not None and job.state is JobState.SUCCEEDED and job.attempts == 2
    finally:
        await again.stop()


async def test_sigterm_with_a_job_running_loses_nothing(tmp_path: Path) -> None:
    from simulators.a1111 import A1111Simulator
    from simulators.telegram import TelegramSimulator
    from tests.reliability_support import BotProcess, deliveries, queued_jobs, read_db, write_config

    token = "515151:SIGTERM-TEST"
    sim = TelegramSimulator(token=token, time_scale=0.02)
    await sim.start()
    sim.add_chat(7)
    backend = A1111Simulator(seconds_per_step=0.1, model_load_seconds=0.05)
    url = await backend.start()
    data = tmp_path / "data"
    config = write_config(tmp_path / "bot.toml", data, url, sim, extra="")
    config.write_text(
        config.read_text().replace('log_level = "INFO"', 'log_level = "INFO"\nshutdown_grace_seconds = 20')
    )
    bot = BotProcess(config=config, log_dir=tmp_path, env={"TELEGRAM_TOKEN": token})
    try:
        bot.start()
        await sim.wait_for(lambda: sim.count("getUpdates") > 0, 60)
        await sim.send_text(7, 7, "/imagine shutting down --steps 20")
        await sim.wait_for(lambda: len(queued_jobs(sim)) == 1, 60)
        (job_id,) = queued_jobs(sim)
        await backend.wait_for_step(3, 60)
        await bot.terminate()  # SIGTERM mid-generation: the job finishes and is delivered before the exit
        assert deliveries(sim)[job_id] == 1
        rows = read_db(data / "imagebridge.sqlite3", "SELECT state, delivery FROM jobs WHERE id = ?", (job_id,))
        assert rows == [("succeeded", "delivered")]
        assert "still running at shutdown" not in bot.output()
    finally:
        await bot.kill()
        await backend.stop()
        await sim.stop()


class HeldOutbound(RecordingOutbound):
    """Deliveries wait for `release`: a result the platform is still accepting when SIGTERM comes."""

    def __init__(self) -> None:
        super().__init__()
        self.release = asyncio.Event()

    async def deliver(self, job: Job, reply: Reply) -> bool:
        self.attempted.set()
        await self.release.wait()
        return await super().deliver(job, reply)


async def test_drain_waits_for_a_delivery_under_way_from_an_earlier_run(tmp_path: Path) -> None:
    failing = RecordingOutbound(fail_deliveries=1)  # the first run stores the result but cannot deliver it
    first = await build_app(make_settings(tmp_path / "data"), [failing], backends=[FakeBackend()])
    await first.start()
    reply = await dispatch_text(first.services, invocation(), "/imagine delivered later")
    assert reply is not None and reply.job_id
    await asyncio.wait_for(failing.attempted.wait(), 5)
    await first.engine.drain(grace_seconds=5)
    await first.stop()

    held = HeldOutbound()
    second = await build_app(make_settings(tmp_path / "data"), [held], backends=[FakeBackend()])
    await second.start()  # the delivery sweep picks the stored result up at once
    await asyncio.wait_for(held.attempted.wait(), 5)
    drain = asyncio.create_task(second.engine.drain(grace_seconds=10))
    done, _ = await asyncio.wait({drain}, timeout=0.3)
    assert not done, "drain returned while a delivery was still under way"
    held.release.set()
    await asyncio.wait_for(drain, 5)
    await asyncio.wait_for(second.stop(), 10)
    assert held.delivered_ids() == [reply.job_id]
    check = await build_app(make_settings(tmp_path / "data"), [], backends=[])
    try:
        job = await check.services.store.get(reply.job_id)
        assert job is not None and job.delivery is DeliveryState.DELIVERED  # the next start will not send it again
    finally:
        await check.stop()
