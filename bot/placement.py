"""Queue position and ETA for just-submitted jobs, one walk of the queue per loop turn.

A position comes from walking the fair order up to the job, so a burst of n submissions used to walk
the queue n times (quadratic). Submissions that finish in the same turn of the event loop (a group
commit releases them together) now share one walk.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Collection, Mapping, Sequence
from typing import TYPE_CHECKING

from bot.models import Job, JobState, utcnow

if TYPE_CHECKING:
    from bot.scheduler import FairScheduler

Place = tuple[int | None, float | None]  # 1-based position in the fair order, seconds until likely done
NOWHERE: Place = (None, None)


class BatchedPlacement:
    """Coalesces `place(job_id)` calls made in one loop turn into one call of `compute`."""

    def __init__(self, compute: Callable[[Collection[str]], dict[str, Place]]) -> None:
        self._compute = compute
        self._waiting: dict[str, asyncio.Future[Place]] = {}
        self._scheduled = False

    async def place(self, job_id: str) -> Place:
        loop = asyncio.get_running_loop()
        future = self._waiting.get(job_id)
        if future is None:
            future = self._waiting[job_id] = loop.create_future()
        if not self._scheduled:
            self._scheduled = True
            loop.call_soon(self._place_all)  # after every continuation already ready in this turn
        return await future

    def _place_all(self) -> None:
        self._scheduled = False
        waiting, self._waiting = self._waiting, {}
        try:
            places = self._compute(waiting.keys())
        except Exception as exc:  # never leave a submitter hanging
            for future in waiting.values():
                if not future.done():
                    future.set_exception(exc)
            return
        for job_id, future in waiting.items():
            if not future.done():
                future.set_result(places.get(job_id, NOWHERE))


def walk_places(
    scheduler: FairScheduler,
    jobs: Mapping[str, Job],
    job_ids: Collection[str],
    running: Sequence[Job],
    estimate: Callable[[Job], float],
    workers: int,
) -> dict[str, Place]:
    """Positions and ETAs of several queued jobs from one walk of the fair order (the running jobs' rest first)."""
    wanted = {job_id for job_id in job_ids if job_id in jobs}
    if not wanted:
        return {}
    now = utcnow()
    ahead = 0.0
    for job in running:
        elapsed = (now - job.started_at).total_seconds() if job.started_at else 0.0
        ahead += max(0.0, estimate(job) - elapsed)
    lanes = max(1, workers)
    found: dict[str, Place] = {}
    for place, entry in enumerate(scheduler.walk(), start=1):
        if entry.job_id in wanted:
            found[entry.job_id] = (place, ahead / lanes + estimate(jobs[entry.job_id]))
            if len(found) == len(wanted):
                break
        ahead += entry.estimate
    for job_id in wanted - found.keys():  # taken by a worker already, or on a paused server
        job = jobs[job_id]
        behind = 0.0 if job.state is JobState.RUNNING else ahead / lanes
        found[job_id] = (None, behind + estimate(job))
    return found
