"""The job store: what platform adapters record survives the engine's whole-row saves."""

from __future__ import annotations

import pytest

from commands.dispatch import dispatch_text
from tests.conftest import AppFactory, invocation


@pytest.fixture(params=["sqlite", "postgres"])
def store_kind(request: pytest.FixtureRequest) -> str:
    """Every test here runs on both stores."""
    return str(request.param)


async def test_saving_a_job_keeps_the_message_ids_adapters_recorded(app_factory: AppFactory) -> None:
    """A whole-row save of the in-memory job must not erase what `set_message` added (a restart reads it)."""
    app = await app_factory(start=False)
    reply = await dispatch_text(app.services, invocation(), "/imagine a harbour")
    assert reply is not None and reply.job_id
    store = app.services.store
    await store.set_message(reply.job_id, "telegram_status", "-100:5")
    job = app.engine.active_job(reply.job_id)
    assert job is not None and "telegram_status" not in job.messages  # the engine's copy never saw it
    await store.save(job)
    saved = await store.get(reply.job_id)
    assert saved is not None and saved.messages.get("telegram_status") == "-100:5"


async def test_create_all_writes_every_job_or_none(app_factory: AppFactory) -> None:
    """A wildcard expansion is charged whole: when the last job would pass the quota, none is stored or reserved."""
    from datetime import date

    from bot.errors import QuotaExceeded
    from bot.models import Job, JobState
    from bot.ports import QuotaLimits

    app = await app_factory(start=False)
    reply = await dispatch_text(app.services, invocation(), "/imagine a harbour")
    assert reply is not None and reply.job_id
    template = app.engine.active_job(reply.job_id)
    assert template is not None
    store = app.services.store
    day = date(2026, 1, 1)
    jobs = [Job(request=template.request, destination=template.destination, cost=4.0) for _ in range(3)]
    try:
        await store.create_all(jobs, QuotaLimits(user=10.0, server=None, day=day))
    except QuotaExceeded:
        pass
    else:
        raise AssertionError("three jobs of 4 passed a limit of 10")
    assert [await store.get(job.id) for job in jobs] == [None, None, None]
    assert await store.usage("console", "s1", "u1", day) == (0.0, 0.0)
    await store.create_all(jobs[:2], QuotaLimits(user=10.0, server=None, day=day))
    assert [(await store.get(job.id)).state for job in jobs[:2]] == [JobState.QUEUED] * 2  # type: ignore[union-attr]
    assert (await store.usage("console", "s1", "u1", day))[0] == 8.0
