"""Quota reservations are atomic: racing requests cannot overspend; failures and cancels refund."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest

from bot.quota import quota_day
from bot.replies import Tone
from bot.settings import QuotaConfig
from commands.dispatch import dispatch_text
from tests.conftest import AppFactory, invocation
from tests.fakes import FakeBackend


@pytest.fixture(params=["sqlite", "postgres"])
def store_kind(request: pytest.FixtureRequest) -> str:
    """Every test here runs on both stores."""
    return str(request.param)


async def test_concurrent_enqueues_cannot_overspend(app_factory: AppFactory) -> None:
    backend = FakeBackend(hold=True)
    # sd15 at 512×512, 10 steps: cost = 10 × 0.262144 = 2.62144; a budget of 27 fits exactly 10 jobs.
    app = await app_factory(backend=backend, quota={"user_daily": 27.0}, limits={"max_queued_per_user": 200})
    replies = await asyncio.gather(
        *(dispatch_text(app.services, invocation(), f"/imagine job {i} --preset sd15 --steps 10") for i in range(100))
    )
    accepted = [r for r in replies if r is not None and r.tone is not Tone.ERROR]
    refused = [r for r in replies if r is not None and r.tone is Tone.ERROR]
    assert len(accepted) == 10 and len(refused) == 90
    assert all("daily quota" in r.text for r in refused)
    row = await app.db.fetchone("SELECT COUNT(*), SUM(amount) FROM quota_ledger WHERE state = 'reserved'")
    assert row is not None and row[0] == 10 and row[1] <= 27.0
    backend.release.set()


async def test_server_limit_applies_across_users(app_factory: AppFactory) -> None:
    app = await app_factory(backend=FakeBackend(hold=True), quota={"server_daily": 6.0})
    first = await dispatch_text(app.services, invocation(user="a"), "/imagine x --preset sd15 --steps 10")
    second = await dispatch_text(app.services, invocation(user="b"), "/imagine x --preset sd15 --steps 10")
    third = await dispatch_text(app.services, invocation(user="c"), "/imagine x --preset sd15 --steps 10")
    assert first and second and third
    assert first.tone is not Tone.ERROR and second.tone is not Tone.ERROR
    assert third.tone is Tone.ERROR and "this server's daily quota" in third.text
    elsewhere = await dispatch_text(
        app.services, invocation(user="c", server="s2"), "/imagine x --preset sd15 --steps 10"
    )
    assert elsewhere is not None and elsewhere.tone is not Tone.ERROR


async def test_role_limits_and_refund_after_failure(app_factory: AppFactory) -> None:
    from bot.errors import BackendError

    backend = FakeBackend(failures=[BackendError("broken")])
    app = await app_factory(backend=backend, quota={"user_daily": 1.0, "roles": {"vip": 100.0}})
    poor = await dispatch_text(app.services, invocation(), "/imagine x --preset sd15 --steps 10")
    assert poor is not None and poor.tone is Tone.ERROR
    rich = await dispatch_text(app.services, invocation(roles=["vip"]), "/imagine x --preset sd15 --steps 10")
    assert rich is not None and rich.job_id
    await asyncio.wait_for(app.engine.finished_event(rich.job_id).wait(), 5)
    row = await app.db.fetchone("SELECT state FROM quota_ledger WHERE job_id = ?", (rich.job_id,))
    assert row is not None and row[0] == "refunded"


def test_quota_day_follows_the_configured_zone_and_hour() -> None:
    config = QuotaConfig(timezone="Asia/Shanghai", reset_hour=6)
    # 21:30 UTC on the 1st is 05:30 on the 2nd in Shanghai: still the 1st's quota day (reset at 06:00).
    assert quota_day(datetime(2026, 1, 1, 21, 30, tzinfo=UTC), config).isoformat() == "2026-01-01"
    assert quota_day(datetime(2026, 1, 1, 22, 30, tzinfo=UTC), config).isoformat() == "2026-01-02"
