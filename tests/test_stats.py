"""/stats: images and cost per user on this server, today and this week."""

from __future__ import annotations

import asyncio

import pytest

from commands.dispatch import dispatch_text
from tests.conftest import AppFactory, invocation


@pytest.fixture(params=["sqlite", "postgres"])
def store_kind(request: pytest.FixtureRequest) -> str:
    """Every test here runs on both stores."""
    return str(request.param)


async def test_stats_counts_images_and_cost_per_user(app_factory: AppFactory) -> None:
    app = await app_factory()
    jobs = [
        await dispatch_text(app.services, invocation(user="alice"), "/imagine a --n 2 --preset sd15 --steps 10"),
        await dispatch_text(app.services, invocation(user="bob"), "/imagine b --preset sd15 --steps 10"),
        await dispatch_text(app.services, invocation(user="carol", server="elsewhere"), "/imagine c --preset sd15"),
    ]
    for reply in jobs:
        assert reply is not None and reply.job_id
        await asyncio.wait_for(app.engine.finished_event(reply.job_id).wait(), 5)
    stats = await dispatch_text(app.services, invocation(user="bob"), "/stats")
    assert stats is not None
    lines = stats.text.splitlines()
    # sd15 at 512×512, 10 steps: 2.62144 per image
    assert lines[0] == "today: 3 images, cost 7.86, 2 users"
    assert lines[1] == "  alice: 2 images, cost 5.24" and lines[2] == "  bob: 1 image, cost 2.62"
    assert lines[3] == "this week: 3 images, cost 7.86, 2 users"
    assert "carol" not in stats.text
