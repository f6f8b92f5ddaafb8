"""Queue positions that stay true: the waiting jobs' status messages follow the queue as it moves.

Whenever the queue changes (a job queued, picked, cancelled, requeued, a server paused), one forecast
(bot/placement.py) places every job told its position, at most once per `interval`; a job whose place
moved gets a new status through the notifier, which throttles edits per destination like progress.
Far back in line only a move of a tenth or more is shown, so a long queue does not flood a chat.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Collection
from typing import Protocol

from bot import presenter
from bot.models import Job
from bot.placement import Place
from bot.replies import Reply

log = logging.getLogger(__name__)

REFRESH_SECONDS = 1.0
EXACT_UP_TO = 10  # positions up to this are shown on every move


def worth_showing(old: Place, new: Place) -> bool:
    """Whether a job's new place differs enough from the one it was last shown to edit its message."""
    (old_position, old_eta), (new_position, new_eta) = old, new
    if old_position is None or new_position is None:
        return old_position != new_position
    moved = abs(new_position - old_position)
    if moved and (new_position <= EXACT_UP_TO or moved * 10 >= old_position):
        return True
    if old_eta is None or new_eta is None:
        return False
    return abs(new_eta - old_eta) >= max(30.0, 0.25 * old_eta)  # the backends ran much faster or slower


class Placing(Protocol):
    """The part of the Jobs port (bot/jobs.py) that position updates read."""

    def is_queued(self, job_id: str) -> bool:
        """Whether the job still waits in a queue."""
        ...

    def places(self, job_ids: Collection[str]) -> dict[str, Place]:
        """Places of several jobs from one forecast."""
        ...

    def active_job(self, job_id: str) -> Job | None:
        """The live copy of a queued or running job."""
        ...

    def is_paused(self, queue_key: str) -> bool:
        """Whether this server's queue is paused."""
        ...


class PositionUpdates:
    """Re-places the jobs waiting in line when the queue changes and shows those that moved."""

    def __init__(self, jobs: Placing, publish: Callable[[Job, Reply], None], interval: float = REFRESH_SECONDS) -> None:
        self.jobs = jobs
        self.publish = publish
        self.interval = interval
        self.shown: dict[str, Place] = {}  # job id -> the place its status message shows
        self.refreshes = 0
        self._changed = asyncio.Event()

    def told(self, job_id: str, place: Place) -> None:
        """The user was just shown this place (the queued reply)."""
        self.shown[job_id] = place
        self._changed.set()

    def poke(self) -> None:
        """The queue changed (called by the scheduler, synchronously)."""
        if self.shown:
            self._changed.set()

    async def run(self) -> None:
        while True:
            await self._changed.wait()
            await asyncio.sleep(self.interval)  # coalesce a burst of changes into one forecast
            self._changed.clear()
            try:
                self.refresh()
            except Exception:
                log.exception("queue position refresh failed")

    def refresh(self) -> None:
        """One forecast for every job told its place; publish the places that moved enough."""
        jobs = self.jobs
        for job_id in [job_id for job_id in self.shown if not jobs.is_queued(job_id)]:
            del self.shown[job_id]  # running (its message shows progress now), finished or cancelled
        waiting = list(self.shown)
        if not waiting:
            return
        self.refreshes += 1
        places = jobs.places(waiting)
        for job_id in waiting:
            job, place = jobs.active_job(job_id), places.get(job_id)
            if job is None or place is None or not worth_showing(self.shown[job_id], place):
                continue
            self.shown[job_id] = place
            paused = jobs.is_paused(job.queue_key)
            self.publish(job, presenter.queued(job, place[0], place[1], paused))
