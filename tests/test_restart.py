"""Restart with queued and running jobs: nothing lost, nothing delivered twice."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from bot.app import build_app
from bot.models import DeliveryState, JobState
from bot.settings import Settings
from commands.dispatch import dispatch_text
from tests.conftest import invocation, make_settings
from tests.fakes import FakeBackend, RecordingOutbound


@pytest.fixture(params=["sqlite", "postgres"])
def store_kind(request: pytest.FixtureRequest) -> str:
    """Every test here runs on both stores."""
    return str(request.param)


async def test_queued_and_running_jobs_survive_a_restart(tmp_path: Path, storage: dict[str, Any]) -> None:
    settings = make_settings(tmp_path / "data", **storage)
    held = FakeBackend(hold=True)
    first = await build_app(settings, [RecordingOutbound()], backends=[held])
    await first.start()
    ids = []
    for index in range(4):
        reply = await dispatch_text(first.services, invocation(user=f"u{index % 2}"), f"/imagine job {index}")
        assert reply is not None and reply.job_id
        ids.append(reply.job_id)
    await asyncio.wait_for(held.started.wait(), 5)
    running = held.calls[0][0]
    # The process dies: no clean shutdown of the job, the worker task is simply gone.
    await first.stop()
    assert (await first_state(settings, running)) is JobState.RUNNING

    outbound = RecordingOutbound()
    backend = FakeBackend()
    second = await build_app(settings, [outbound], backends=[backend])
    await second.start()
    try:
        for job_id in ids:
            await asyncio.wait_for(second.engine.finished_event(job_id).wait(), 5)
        assert sorted(outbound.delivered_ids()) == sorted(ids)
        assert backend.calls[0][0] == running  # the interrupted job runs first again
        for job_id in ids:
            job = await second.services.store.get(job_id)
            assert job is not None and job.state is JobState.SUCCEEDED and job.delivery is DeliveryState.DELIVERED
        rerun = await second.services.store.get(running)
        assert rerun is not None and rerun.attempts == 2
    finally:
        await second.stop()

    third_outbound = RecordingOutbound()
    third = await build_app(settings, [third_outbound], backends=[FakeBackend()])
    await third.start()
    await third.engine.deliver_pending()
    await third.stop()
    assert third_outbound.deliveries == []  # nothing is delivered twice


async def test_results_stored_but_not_delivered_are_delivered_once_after_restart(
    tmp_path: Path, storage: dict[str, Any]
) -> None:
    settings = make_settings(tmp_path / "data", **storage)
    failing = RecordingOutbound(fail_deliveries=100)  # the platform is down when the job finishes
    first = await build_app(settings, [failing], backends=[FakeBackend()])
    await first.start()
    reply = await dispatch_text(first.services, invocation(), "/imagine stored not shown")
    assert reply is not None and reply.job_id
    await asyncio.wait_for(failing.attempted.wait(), 5)
    await first.stop()
    job = await first_state_job(settings, reply.job_id)
    assert job.state is JobState.SUCCEEDED and job.delivery is DeliveryState.PENDING

    outbound = RecordingOutbound()
    second = await build_app(settings, [outbound], backends=[FakeBackend()])
    await second.start()
    await asyncio.wait_for(second.engine.finished_event(reply.job_id).wait(), 5)
    await second.engine.deliver_pending()
    await second.stop()
    assert outbound.delivered_ids() == [reply.job_id]


async def first_state(settings: Settings, job_id: str) -> JobState:
    return (await first_state_job(settings, job_id)).state


async def first_state_job(settings: Settings, job_id: str):  # type: ignore[no-untyped-def]
    app = await build_app(settings, [], backends=[])
    try:
        job = await app.services.store.get(job_id)
        assert job is not None
        return job
    finally:
        await app.stop()


async def test_a_paused_server_stays_paused_after_a_restart_until_resumed(tmp_path: Path) -> None:
    # "Paused" has one owner, the Jobs port: /admin pause stores it, and the next start reads it back.
    settings = make_settings(tmp_path / "data", access={"bot_admins": ["console:boss"]})
    first = await build_app(settings, [RecordingOutbound()], backends=[FakeBackend()])
    await first.start()
    await dispatch_text(first.services, invocation(user="boss"), "/admin pause")
    reply = await dispatch_text(first.services, invocation(), "/imagine waits for resume")
    assert reply is not None and reply.job_id
    await first.stop()

    backend = FakeBackend()
    second = await build_app(settings, [RecordingOutbound()], backends=[backend])
    await second.start()
    try:
        jobs = second.services.jobs
        assert jobs.is_paused("console:s1") and jobs.is_queued(reply.job_id)
        assert jobs.place(reply.job_id) == (None, None)  # on a paused server: no place in line
        await dispatch_text(second.services, invocation(user="boss"), "/admin resume")
        await asyncio.wait_for(jobs.wait_delivered(reply.job_id), 5)
        assert backend.calls and backend.calls[0][0] == reply.job_id
        assert not (await second.services.accounts.server("console", "s1")).paused
    finally:
        await second.stop()
