"""Queue positions that stay true: the waiting jobs' status messages follow the queue as it moves.

Whenever the queue changes (a job queued, picked, cancelled, requeued, a server paused), one forecast
(bot/placement.py) places every job told its position, at most once per `interval`; a job whose place
moved gets a new status through the notifier, which throttles edits per destination like progress.
Far back in line only a move of a tenth or more is shown, so a long queue does not flood a chat.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from bot import presenter
from bot.placement import Place

if TYPE_CHECKING:
    from bot.engine import Engine

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


class PositionUpdates:
    """Re-places the jobs waiting in line when the queue changes and shows those that moved."""

    def __init__(self, engine: Engine, interval: float = REFRESH_SECONDS) -> None:
        self.engine = engine
        self.interval = interval
        self.shown: dict[str, Place] = {}  # job id -> the place its status message shows
        self.refreshes = 0
        self._changed = asyncio.Event()
        engine.scheduler.on_change = self.poke

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
        engine = self.engine
        for job_id in [job_id for job_id in self.shown if job_id not in engine.scheduler]:
            del self.shown[job_id]  # running (its message shows progress now), finished or cancelled
        waiting = list(self.shown)
        if not waiting:
            return
        self.refreshes += 1
        places = engine.places(waiting)
        for job_id in waiting:
            job, place = engine.active_job(job_id), places.get(job_id)
            if job is None or place is None or not worth_showing(self.shown[job_id], place):
                continue
            self.shown[job_id] = place
            paused = engine.scheduler.is_paused(job.queue_key)
            engine.notifier.publish(job, presenter.queued(job, place[0], place[1], paused))
