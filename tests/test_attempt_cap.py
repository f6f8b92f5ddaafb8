"""A job whose runner keeps dying (a prompt that crashes the process or the backend's host) is not run forever:
once it was started `max_attempts` times and its runner died again, it ends failed, is refunded and the user is
told why. SQLite: a job still "running" at restart; PostgreSQL: a lease held by a process that is gone."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from bot.app import App, build_app
from bot.models import DeliveryState, JobState, utcnow
from bot.settings import Settings
from commands.dispatch import dispatch_text
from tests.conftest import invocation, make_settings
from tests.fakes import FakeBackend, RecordingOutbound

CAP = 2


@pytest.fixture(params=["sqlite", "postgres"])
def store_kind(request: pytest.FixtureRequest) -> str:
    """Every test here runs on both stores."""
    return str(request.param)


async def started(settings: Settings, outbound: RecordingOutbound) -> tuple[App, FakeBackend]:
    backend = FakeBackend(hold=True)  # each start of the job "kills the process": it never comes back
    app = await build_app(settings, [outbound], backends=[backend])
    await app.start()
    return app, backend


async def test_a_job_whose_runner_died_at_every_attempt_ends_failed_and_refunded(
    tmp_path: Path, storage: dict[str, Any]
) -> None:
    settings = make_settings(tmp_path / "data", limits={"retry_backoff_seconds": 0, "max_attempts": CAP}, **storage)
    app, backend = await started(settings, RecordingOutbound())
    reply = await dispatch_text(app.services, invocation(), "/imagine a prompt that kills the bot")
    assert reply is not None and reply.job_id
    job_id = reply.job_id
    for attempt in range(1, CAP + 1):  # started CAP times, and each time its process dies while running it
        await asyncio.wait_for(backend.started.wait(), 10)
        assert [call[0] for call in backend.calls] == [job_id]
        await app.stop()  # no drain: the worker is simply gone, the job left "running" (its lease held)
        if attempt < CAP:
            app, backend = await started(settings, RecordingOutbound())

    outbound = RecordingOutbound()
    app, backend = await started(settings, outbound)
    try:
        await asyncio.wait_for(app.engine.finished_event(job_id).wait(), 10)
        await asyncio.wait_for(outbound.delivered.wait(), 10)
        job = await app.services.store.get(job_id)
        assert job is not None and job.state is JobState.FAILED and job.attempts == CAP
        assert job.delivery is DeliveryState.DELIVERED
        assert backend.calls == [], "not started a third time"
        [(delivered_id, failure)] = outbound.deliveries
        assert delivered_id == job_id
        assert f"stopped {CAP} times while running this job" in failure.text, failure.text
        assert "Nothing was charged" in failure.text
        assert await app.services.store.usage("console", "s1", "u1", utcnow().date()) == (0.0, 0.0), "refunded"
    finally:
        await app.stop()


async def test_a_job_below_the_cap_still_runs_again_after_its_runner_died(
    tmp_path: Path, storage: dict[str, Any]
) -> None:
    settings = make_settings(tmp_path / "data", limits={"retry_backoff_seconds": 0, "max_attempts": CAP}, **storage)
    app, backend = await started(settings, RecordingOutbound())
    reply = await dispatch_text(app.services, invocation(), "/imagine died once")
    assert reply is not None and reply.job_id
    await asyncio.wait_for(backend.started.wait(), 10)
    await app.stop()

    outbound = RecordingOutbound()
    app = await build_app(settings, [outbound], backends=[FakeBackend()])
    await app.start()
    try:
        await asyncio.wait_for(outbound.delivered.wait(), 10)
        job = await app.services.store.get(reply.job_id)
        assert job is not None and job.state is JobState.SUCCEEDED and job.attempts == CAP
    finally:
        await app.stop()
