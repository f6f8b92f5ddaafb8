"""Scenario: queue positions at depth — one forecast of 10,000 queued jobs (routing and affinity replayed),
a submission at that depth, and a position refresh of every waiting job's message."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from bench.harness import NullOutbound, bot, invocation
from bench.scenarios_load import ParkedBackend
from commands.dispatch import dispatch_text


async def positions(jobs: int, repeats: int = 5, submits: int = 20) -> dict[str, Any]:
    """Two parked backends (one busy on m1), `jobs` queued over 3 presets, 200 users, 5 servers."""
    backends = [ParkedBackend(name="gpu0"), ParkedBackend(name="gpu1")]
    async with bot(backends, NullOutbound()) as app:
        engine = app.engine
        async with asyncio.timeout(10):
            while sum(worker.current is not None for worker in engine.workers) < 2:  # both hold a job
                await dispatch_text(app.services, invocation("warm"), "/imagine warm --preset m1")
                await asyncio.sleep(0.01)
        batch = 500
        for start in range(0, jobs, batch):  # bursts: one forecast per burst, as a group commit gives
            await asyncio.gather(
                *(
                    dispatch_text(
                        app.services,
                        invocation(f"user{index % 200}", server=f"server{index % 5}"),
                        f"/imagine queued job {index} --preset m{index % 3 + 1}",
                    )
                    for index in range(start, min(jobs, start + batch))
                )
            )
        queued = [job.id for _, job in engine.queued_jobs()]
        started = time.perf_counter()
        for _ in range(repeats):
            engine.places(queued)
        walk_ms = (time.perf_counter() - started) * 1000 / repeats
        started = time.perf_counter()
        for _ in range(repeats):
            sum(1 for _ in engine.scheduler.walk())  # the fair order alone, the floor of any placement
        fair_ms = (time.perf_counter() - started) * 1000 / repeats
        started = time.perf_counter()
        for index in range(submits):
            await dispatch_text(app.services, invocation(f"late{index}"), f"/imagine late {index} --preset m2")
        submit_ms = (time.perf_counter() - started) * 1000 / submits
        started = time.perf_counter()
        engine.positions.refresh()
        refresh_ms = (time.perf_counter() - started) * 1000
        for backend in backends:
            backend.release.set()
    return {
        "queued": len(queued),
        "placement_walk_ms": round(walk_ms, 1),
        "fair_walk_ms": round(fair_ms, 1),
        "submit_ms_at_depth": round(submit_ms, 1),
        "position_refresh_ms": round(refresh_ms, 1),
    }
