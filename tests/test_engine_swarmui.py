"""SwarmUI behind the engine: a preset on a `swarmui` backend is generated, shown with previews, and cancelled."""

from __future__ import annotations

import asyncio

import pytest

from adapters.backends.swarmui import SwarmUIBackend
from bot.models import JobState
from commands.dispatch import dispatch_text
from simulators.swarmui import SwarmUISimulator
from tests.conftest import AppFactory, invocation
from tests.fakes import RecordingOutbound

pytestmark = pytest.mark.backends
PRESET = {"backend": "swarm", "checkpoint": "OfficialStableDiffusion/sd_xl_base_1.0.safetensors", "steps": 8,
          "sampler": "DPM++ 2M", "scheduler": "Karras", "base_resolution": 256, "max_images": 4}  # fmt: skip


async def test_through_the_engine_images_and_previews_arrive_and_are_charged(app_factory: AppFactory) -> None:
    sim = SwarmUISimulator(close_grace_seconds=0)
    url = await sim.start()
    outbound = RecordingOutbound()
    try:
        app = await app_factory(
            backend=SwarmUIBackend("swarm", url),
            outbound=outbound,
            backends={"swarm": {"kind": "swarmui", "url": url}},
            presets={"swarm": PRESET},
            quota={"enabled": True, "user_daily": 100.0},
        )
        reply = await dispatch_text(app.services, invocation(), "/imagine a lighthouse --preset swarm --n 2")
        assert reply is not None and reply.job_id, reply
        await asyncio.wait_for(app.engine.finished_event(reply.job_id).wait(), 30)
        job = await app.services.store.get(reply.job_id)
        assert job is not None and job.state is JobState.SUCCEEDED, job
        assert len(await app.services.store.images(reply.job_id)) == 2
        row = await app.db.fetchone("SELECT state FROM quota_ledger WHERE job_id = ?", (reply.job_id,))
        assert row is not None and row[0] == "settled"
        assert any(status.images for _, status in outbound.statuses), "no preview was shown"
    finally:
        await sim.stop()


async def test_through_the_engine_cancel_stops_the_swarm_job_and_refunds(app_factory: AppFactory) -> None:
    sim = SwarmUISimulator(close_grace_seconds=0)
    sim.hold.clear()
    url = await sim.start()
    try:
        app = await app_factory(
            backend=SwarmUIBackend("swarm", url),
            backends={"swarm": {"kind": "swarmui", "url": url}},
            presets={"swarm": PRESET},
            quota={"enabled": True, "user_daily": 100.0},
        )
        reply = await dispatch_text(app.services, invocation(), "/imagine a storm --preset swarm")
        assert reply is not None and reply.job_id
        await asyncio.wait_for(sim.started.wait(), 30)  # on the simulated GPU, paused after its first step
        stopping = await dispatch_text(app.services, invocation(), "/cancel")
        assert stopping is not None
        await asyncio.wait_for(app.engine.finished_event(reply.job_id).wait(), 30)
        job = await app.services.store.get(reply.job_id)
        assert job is not None and job.state is JobState.CANCELLED, job
        row = await app.db.fetchone("SELECT state FROM quota_ledger WHERE job_id = ?", (reply.job_id,))
        assert row is not None and row[0] == "refunded"
        assert "interruptall" in sim.routes
    finally:
        await sim.stop()
