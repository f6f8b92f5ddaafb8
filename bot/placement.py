"""Queue position and ETA: where each job will really start, one forecast of the queue per loop turn.

The fair walk (bot/scheduler.py) is the order picks take with one backend and no affinity. The real order
also depends on which backend frees up when, what each one can run (bot/routing.py) and what it has
loaded (affinity passes jobs over, boundedly). `forecast` replays those picks over the fair walk for the
front of the queue, where they change anything, and keeps the fair order beyond it: O(queue) for the
walk plus O(horizon × window) for the replay. Submissions that finish in the same turn of the event loop
(a group commit releases them together) share one forecast.
"""

from __future__ import annotations

import asyncio
import heapq
from collections.abc import Callable, Collection, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from bot.models import Job

if TYPE_CHECKING:
    from bot.scheduler import QueuedJob

Place = tuple[int | None, float | None]  # 1-based position in the fair order, seconds until likely done
NOWHERE: Place = (None, None)
HORIZON = 256  # picks replayed one by one; beyond them affinity has long run out of pass-overs


class FairOrder(Protocol):
    """What the forecast asks of the fair queue (bot/scheduler.py)."""

    def walk(self) -> Iterator[QueuedJob]:
        """Queued jobs in the order repeated fair picks would take them."""
        ...

    def now(self) -> float:
        """The queue's clock, on which pass-over seconds are measured."""
        ...

    def window_for(self, loaded_checkpoint: str | None) -> int:
        """How many of the next jobs a backend with this checkpoint loaded chooses from."""
        ...

    def choose(
        self, candidates: list[QueuedJob], loaded_checkpoint: str | None, overdue: Callable[[QueuedJob], bool]
    ) -> int:
        """Which of the candidates a backend with this checkpoint loaded takes."""
        ...

    def overdue_at(self, passed_over: int, first_passed_at: float | None, now: float) -> bool:
        """Passed over as often or as long as the bound allows."""
        ...


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


@dataclass
class Lane:
    """A backend as the forecast sees it: seconds until it is free, the checkpoint it will have, what it runs."""

    free_in: float
    loaded: str | None
    runs: Callable[[QueuedJob], bool]


class _View:
    """The jobs one backend can run, in fair order, found as far as asked (each job is tested once)."""

    def __init__(self, runs: Callable[[QueuedJob], bool]) -> None:
        self.runs = runs
        self.found: list[int] = []  # indices into the fair sequence
        self.scanned = 0
        self.head = 0  # before it, every found job is taken

    def candidates(self, sequence: list[QueuedJob], taken: bytearray, window: int) -> list[int]:
        """The first `window` jobs not yet taken that this backend can run."""
        while self.head < len(self.found) and taken[self.found[self.head]]:
            self.head += 1
        result: list[int] = []
        j = self.head
        while len(result) < window and (j < len(self.found) or self._extend(sequence)):
            if not taken[self.found[j]]:
                result.append(self.found[j])
            j += 1
        return result

    def _extend(self, sequence: list[QueuedJob]) -> bool:
        while self.scanned < len(sequence):
            self.scanned += 1
            if self.runs(sequence[self.scanned - 1]):
                self.found.append(self.scanned - 1)
                return True
        return False


class Forecast:
    """Positions and seconds until done, in two flat maps (a tuple per job would wake the garbage collector)."""

    def __init__(self) -> None:
        self.positions: dict[str, int] = {}
        self.done_in: dict[str, float] = {}

    def __len__(self) -> int:
        return len(self.positions)

    def add(self, job_id: str, done_in: float) -> None:
        self.positions[job_id] = len(self.positions) + 1
        self.done_in[job_id] = done_in

    def place(self, job_id: str) -> Place | None:
        position = self.positions.get(job_id)
        return None if position is None else (position, self.done_in[job_id])


def forecast(scheduler: FairOrder, lanes: Sequence[Lane], horizon: int = HORIZON) -> Forecast:
    """Every queued job's place in the order backends will start them, and seconds until it is likely done.

    Picks are replayed as the scheduler makes them (bot/scheduler.py `pick`): the backend free first takes,
    among the next jobs it can run in fair order, the first on its loaded checkpoint or overdue. A pick out
    of fair order leaves the rest of the fair walk as it was (ties may break otherwise in the real queue).
    Each job's expected duration is the estimate it was queued with.
    """
    sequence = list(scheduler.walk())
    taken = bytearray(len(sequence))
    lanes = list(lanes) or [Lane(0.0, None, lambda _job: True)]
    loaded = [lane.loaded for lane in lanes]
    views = [_View(lane.runs) for lane in lanes]
    free = [(max(0.0, lane.free_in), i) for i, lane in enumerate(lanes)]
    heapq.heapify(free)
    passed: dict[str, tuple[int, float | None]] = {}
    now = scheduler.now()
    places = Forecast()

    def overdue_at(at: float) -> Callable[[QueuedJob], bool]:
        def overdue(job: QueuedJob) -> bool:
            count, since = passed.get(job.job_id, (job.passed_over, job.first_passed_at))
            return scheduler.overdue_at(count, since, now + at)

        return overdue

    while free and len(places) < min(horizon, len(sequence)):
        at, i = heapq.heappop(free)
        candidates = views[i].candidates(sequence, taken, scheduler.window_for(loaded[i]))
        if not candidates:  # nothing left that this backend can run
            continue
        jobs = [sequence[k] for k in candidates]
        chosen = scheduler.choose(jobs, loaded[i], overdue_at(at)) if len(jobs) > 1 else 0
        for job in jobs[:chosen]:
            count, since = passed.get(job.job_id, (job.passed_over, job.first_passed_at))
            passed[job.job_id] = (count + 1, now + at if since is None else since)
        job = jobs[chosen]
        taken[candidates[chosen]] = 1
        done = at + job.estimate
        places.add(job.job_id, done)
        loaded[i] = job.checkpoint
        heapq.heappush(free, (done, i))
    _fair_rest(sequence, taken, places, [at for at, _ in free] or [0.0])
    return places


def _fair_rest(
    sequence: list[QueuedJob],
    taken: bytearray,
    places: Forecast,
    free: list[float],
) -> None:
    """Beyond the replay, the fair order, with the backends' time shared evenly."""
    lanes = len(free)
    ahead = sum(free)
    for k, job in enumerate(sequence):
        if not taken[k]:
            ahead += job.estimate
            places.add(job.job_id, ahead / lanes)


def queue_order(places: dict[str, Place], queued: list[Job], server: str | None) -> list[tuple[int, Job]]:
    """Queued jobs by their forecast position, optionally one server's only."""
    placed = sorted((place[0], job.id, job) for job in queued if (place := places.get(job.id)) and place[0] is not None)
    return [(position, job) for position, _, job in placed if server is None or job.queue_key == server]
