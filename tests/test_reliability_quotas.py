"""Quotas under the reliability bar: refunds on failure and cancel, the daily reset in the configured zone,
role, personal and server limits set by admins.

100 concurrent requests from one user with budget for 10 (exactly 10 accepted) is
tests/test_quota.py::test_concurrent_enqueues_cannot_overspend; it is not repeated here.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from bot.app import App
from bot.errors import BackendError
from bot.models import JobState
from bot.replies import Reply, Tone
from commands.context import Invocation
from commands.dispatch import dispatch_button, dispatch_text
from tests.conftest import AppFactory, invocation
from tests.fakes import FakeBackend

pytestmark = pytest.mark.reliability

JOB = "/imagine a quota test --preset sd15 --steps 10"  # sd15 at 512×512, 10 steps: cost 2.62144
ONE_JOB = 2.62144


async def imagine(app: App, who: Invocation, text: str = JOB) -> Reply:
    reply = await dispatch_text(app.services, who, text)
    assert reply is not None
    return reply


async def ledger(app: App, job_id: str) -> str:
    row = await app.db.fetchone("SELECT state FROM quota_ledger WHERE job_id = ?", (job_id,))
    return str(row[0]) if row else ""


async def done(app: App, job_id: str) -> None:
    async with asyncio.timeout(10):
        await app.engine.finished_event(job_id).wait()


@pytest.fixture(params=["sqlite", "postgres"])
def store_kind(request: pytest.FixtureRequest) -> str:
    """Every test here runs on both stores."""
    return str(request.param)


async def test_failure_refunds_and_the_budget_is_usable_again(app_factory: AppFactory) -> None:
    backend = FakeBackend(failures=[BackendError("The backend failed: boom.")])
    app = await app_factory(backend=backend, quota={"user_daily": ONE_JOB * 1.5})
    failed = await imagine(app, invocation())
    assert failed.job_id and failed.tone is not Tone.ERROR
    await done(app, failed.job_id)
    job = await app.services.store.get(failed.job_id)
    assert job is not None and job.state is JobState.FAILED
    assert await ledger(app, failed.job_id) == "refunded"
    again = await imagine(app, invocation())
    assert again.job_id and again.tone is not Tone.ERROR, "the refunded cost is back in the budget"
    await done(app, again.job_id)
    assert await ledger(app, again.job_id) == "settled"


async def test_cancel_of_queued_and_running_jobs_refunds(app_factory: AppFactory) -> None:
    backend = FakeBackend(hold=True)
    app = await app_factory(backend=backend, quota={"user_daily": ONE_JOB * 2.5})
    running = await imagine(app, invocation())
    queued = await imagine(app, invocation())
    assert running.job_id and queued.job_id
    full = await imagine(app, invocation())
    assert full.tone is Tone.ERROR and "daily quota" in full.text
    async with asyncio.timeout(10):
        await backend.started.wait()
    await dispatch_button(app.services, invocation(), f"cancel:{queued.job_id}")
    await dispatch_text(app.services, invocation(), f"/cancel {running.job_id}")
    await done(app, queued.job_id)
    await done(app, running.job_id)
    assert await ledger(app, queued.job_id) == "refunded"
    assert await ledger(app, running.job_id) == "refunded", "interrupted on the backend: nothing delivered"
    backend.hold = False
    two = [await imagine(app, invocation()) for _ in range(2)]
    assert all(r.job_id and r.tone is not Tone.ERROR for r in two), "both refunds are usable"


async def test_daily_reset_in_the_configured_time_zone(app_factory: AppFactory) -> None:
    app = await app_factory(
        backend=FakeBackend(hold=True),
        quota={"user_daily": ONE_JOB * 1.5, "timezone": "Asia/Shanghai", "reset_hour": 6},
        limits={"max_queued_per_user": 10},
    )
    now = datetime(2026, 1, 1, 21, 30, tzinfo=UTC)  # 05:30 on the 2nd in Shanghai: still the 1st's quota day
    app.services.clock = lambda: now
    assert (await imagine(app, invocation())).tone is not Tone.ERROR
    exhausted = await imagine(app, invocation())
    assert exhausted.tone is Tone.ERROR and "daily reset" in exhausted.text
    now = datetime(2026, 1, 1, 21, 59, tzinfo=UTC)  # 05:59 local: not yet
    assert (await imagine(app, invocation())).tone is Tone.ERROR
    now = datetime(2026, 1, 1, 22, 0, tzinfo=UTC)  # 06:00 local: a new quota day
    assert (await imagine(app, invocation())).tone is not Tone.ERROR
    now += timedelta(days=1)
    assert (await imagine(app, invocation())).tone is not Tone.ERROR
    quota = await imagine(app, invocation(), "/quota")
    assert "of 3.93216" in quota.text or "of 3.9" in quota.text


async def test_role_limits_beat_the_default_and_personal_limits_beat_roles(app_factory: AppFactory) -> None:
    app = await app_factory(backend=FakeBackend(hold=True), quota={"user_daily": 1.0, "roles": {"vip": 100.0}})
    assert (await imagine(app, invocation(user="plain"))).tone is Tone.ERROR
    assert (await imagine(app, invocation(user="vip", roles=["vip"]))).tone is not Tone.ERROR
    # A server role limit set by an admin applies in that server only.
    await dispatch_text(app.services, invocation(is_admin=True), "/admin quota role painter 50")
    assert (await imagine(app, invocation(user="p", roles=["painter"]))).tone is not Tone.ERROR
    elsewhere = await imagine(app, invocation(user="p", server="s2", roles=["painter"]))
    assert elsewhere.tone is Tone.ERROR
    # A personal limit wins over the most generous role.
    await dispatch_text(app.services, invocation(is_admin=True), "/admin quota user capped 1")
    assert (await imagine(app, invocation(user="capped", roles=["vip"]))).tone is Tone.ERROR


async def test_server_limit_set_by_an_admin_holds_across_users(app_factory: AppFactory) -> None:
    app = await app_factory(backend=FakeBackend(hold=True), quota={"user_daily": 100.0})
    set_limit = await dispatch_text(app.services, invocation(is_admin=True), f"/admin quota server {ONE_JOB * 2.5}")
    assert set_limit is not None and set_limit.tone is not Tone.ERROR
    accepted = [await imagine(app, invocation(user=f"u{i}")) for i in range(3)]
    assert [r.tone is Tone.ERROR for r in accepted] == [False, False, True]
    assert "this server's daily quota" in accepted[2].text
    other_server = await imagine(app, invocation(user="u9", server="s2"))
    assert other_server.tone is not Tone.ERROR
    row = await app.db.fetchone("SELECT COUNT(*) FROM jobs")
    assert row is not None and row[0] == 3, "the refused request left no job row"
