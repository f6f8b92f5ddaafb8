"""Positions and quota checks stay exact when a burst of commands is placed and written as one batch."""

from __future__ import annotations

import asyncio
import re

from bot.replies import Tone
from commands.dispatch import dispatch_text
from tests.conftest import AppFactory, invocation


async def test_a_burst_gets_the_positions_of_the_fair_order(app_factory: AppFactory) -> None:
    app = await app_factory(start=False, limits={"max_queued_per_user": 50})
    replies = await asyncio.gather(
        *(
            dispatch_text(app.services, invocation(user=f"u{i % 3}", server=f"s{i % 2}"), f"/imagine job {i}")
            for i in range(30)
        )
    )
    reported = {}
    for reply in replies:
        assert reply is not None and reply.job_id, reply
        match = re.search(r"#(\d+)", reply.text)
        assert match, reply.text
        reported[reply.job_id] = int(match.group(1))
    order = {job.id: position for position, job in app.engine.queued_jobs()}
    assert reported == order
    assert sorted(reported.values()) == list(range(1, 31))
    etas = [app.engine.eta(job_id) for job_id, _ in sorted(order.items(), key=lambda item: item[1])]
    assert all(eta is not None for eta in etas) and etas == sorted(etas)  # type: ignore[type-var]


async def test_a_burst_on_one_server_cannot_overspend_its_limit(app_factory: AppFactory) -> None:
    app = await app_factory(start=False, quota={"server_daily": 6.0})
    command = "/imagine x --preset sd15 --steps 10"
    replies = await asyncio.gather(*(dispatch_text(app.services, invocation(user=f"u{i}"), command) for i in range(9)))
    accepted = [r for r in replies if r is not None and r.tone is not Tone.ERROR]
    refused = [r for r in replies if r is not None and r.tone is Tone.ERROR]
    assert len(accepted) == 2 and len(refused) == 7  # 2 × 2.62 fits in 6, a third does not
    assert all("this server's daily quota" in r.text for r in refused)
    row = await app.db.fetchone("SELECT COUNT(*) FROM jobs")
    assert row is not None and row[0] == 2
