"""A replica of the queue several processes share (PostgreSQL), as one process keeps it (bot/shared_views.py).

The queue as last read from the store (bot/queue_store.py QueueReader), read again whenever `kick`ed (a store
signal, or the poll) and coalesced: at most one read in flight and one more asked for, at most one every
MIN_INTERVAL for signals; a caller that must see its own change (a submit's ticket) waits with `fresh`, which
skips that pause. `ReplicaOrder` is its fair order as bot/placement.py's forecast asks for it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import Counter
from collections.abc import Callable, Collection, Iterator
from dataclasses import replace

from bot.models import Job
from bot.queue_store import QueueRead, QueueReader, Running
from bot.scheduler import FairScheduler, QueuedJob

log = logging.getLogger(__name__)

MIN_COST = 0.001  # as bot/dispatch.py queues a job
MIN_INTERVAL = 0.25  # seconds between reads a signal asks for (a submit waiting for its place does not wait)


class QueueReplica:
    """The shared queue as last read, read again when `kick`ed (coalesced: one read in flight, one more asked)."""

    def __init__(
        self,
        reader: QueueReader,
        on_change: Callable[[], None],
        clock: Callable[[], float] = time.monotonic,
        min_interval: float = MIN_INTERVAL,
    ) -> None:
        self.reader = reader
        self.min_interval = min_interval
        self.on_change = on_change  # after every read (waiting jobs' positions are placed again)
        self.clock = clock
        self.read = QueueRead()
        self.read_at = clock()
        self.queued: dict[str, Job] = {}  # every queued job, paused servers' too
        self.running: dict[str, Running] = {}
        self.users: Counter[str] = Counter()  # "platform:user" -> jobs queued
        self.reads = 0
        self._asked = 0  # kicks so far
        self._served = 0  # kicks answered by a read that started after them
        self._kicked = asyncio.Event()
        self._hurry = asyncio.Event()  # someone waits for this read: no pause after the last one
        self._answered = asyncio.Condition()
        self._last_read = float("-inf")
        self._reading = False  # `run` is under way
        self._starts = 0  # reads started so far
        self._ended: dict[str, int] = {}  # job id -> reads started before this process ended it

    def kick(self) -> None:
        """The queue changed: read it again (once for every kick made before that read starts)."""
        self._asked += 1
        self._kicked.set()

    async def fresh(self, within: float) -> bool:
        """Return after a read that started after this call (False: none finished within the time)."""
        if not self._reading:  # not started (or stopped): read here
            try:
                async with asyncio.timeout(within):
                    await self._read()
            except Exception:
                log.exception("reading the shared queue failed; the views show the last read until the next one")
                return False
            return True
        self.kick()
        self._hurry.set()
        target = self._asked
        try:
            async with asyncio.timeout(within), self._answered:
                await self._answered.wait_for(lambda: self._served >= target)
        except TimeoutError:
            return False
        return True

    async def wait_for(self, predicate: Callable[[], bool], within: float) -> None:
        """Return once `predicate` holds after some read (TimeoutError after `within` seconds)."""
        async with asyncio.timeout(within), self._answered:
            await self._answered.wait_for(predicate)

    async def run(self) -> None:
        """Read whenever kicked, until cancelled (run it as a task)."""
        self._reading = True
        try:
            await self._read_when_kicked()
        finally:
            self._reading = False

    async def _read_when_kicked(self) -> None:
        while True:
            await self._kicked.wait()
            pause = self._last_read + self.min_interval - self.clock()
            if pause > 0 and not self._hurry.is_set():  # a burst of signals: one read for all of it
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(pause):
                        await self._hurry.wait()
            self._kicked.clear()
            self._hurry.clear()
            self._last_read = self.clock()
            target = self._asked
            try:
                await self._read()
            except Exception:
                log.exception("reading the shared queue failed; the views show the last read until the next one")
            async with self._answered:
                self._served = target
                self._answered.notify_all()
            self.on_change()

    def forget(self, job_id: str) -> None:
        """This process ended the job (finished, cancelled): out of the views now, and out of any read that
        started before (it may still show the job queued or running)."""
        self._ended[job_id] = self._starts
        self.queued.pop(job_id, None)
        self.running.pop(job_id, None)

    async def _read(self) -> None:
        started = self._starts
        self._starts += 1
        read = await self.reader.read_queue()
        stale = {job_id for job_id, starts in self._ended.items() if starts > started}
        self._ended = {job_id: self._ended[job_id] for job_id in stale}  # later reads see them ended
        if stale:
            read = replace(  # the rest (paused servers, live processes, gone chats) as read
                read,
                ordered=[waiting for waiting in read.ordered if waiting.job.id not in stale],
                held=[job for job in read.held if job.id not in stale],
                running=[one for one in read.running if one.job.id not in stale],
            )
        self.apply(read)

    def apply(self, read: QueueRead) -> None:
        self.read, self.read_at = read, self.clock()
        self.queued = {waiting.job.id: waiting.job for waiting in read.ordered}
        self.queued.update((job.id, job) for job in read.held)
        self.running = {one.job.id: one for one in read.running}
        self.users = Counter(f"{job.destination.platform}:{job.destination.user_id}" for job in self.queued.values())
        self.reads += 1

    def job(self, job_id: str) -> Job | None:
        """A queued or running job as last read."""
        job = self.queued.get(job_id)
        if job is None and (running := self.running.get(job_id)) is not None:
            job = running.job
        return job

    def now(self) -> float:
        """The store's clock now, as far as this process can tell (the read's clock plus the time since)."""
        return self.read.clock + (self.clock() - self.read_at)

    def entries(self, estimate: Callable[[Job], float], skip: Collection[str]) -> list[QueuedJob]:
        """The queued jobs (not paused, not in `skip`) in fair order, as the forecast sees them."""
        return [
            QueuedJob(
                job_id=job.id,
                server=job.queue_key,
                user=f"{job.destination.platform}:{job.destination.user_id}",
                cost=max(job.cost, MIN_COST),
                checkpoint=job.request.checkpoint,
                preset=job.request.preset,
                priority=job.priority,
                estimate=estimate(job),
                passed_over=waiting.passed_over,
                first_passed_at=waiting.first_passed_at,
            )
            for waiting in self.read.ordered
            if (job := waiting.job).id not in skip
        ]


class ReplicaOrder:
    """The replica's fair order as the forecast asks for it (bot/placement.py FairOrder); affinity as configured."""

    def __init__(self, entries: list[QueuedJob], policy: FairScheduler, now: float) -> None:
        self.entries = entries
        self.policy = policy
        self._now = now

    def walk(self) -> Iterator[QueuedJob]:
        return iter(self.entries)

    def now(self) -> float:
        return self._now

    def window_for(self, loaded_checkpoint: str | None) -> int:
        return self.policy.window_for(loaded_checkpoint)

    def choose(
        self, candidates: list[QueuedJob], loaded_checkpoint: str | None, overdue: Callable[[QueuedJob], bool]
    ) -> int:
        return self.policy.choose(candidates, loaded_checkpoint, overdue)

    def overdue_at(self, passed_over: int, first_passed_at: float | None, now: float) -> bool:
        return self.policy.overdue_at(passed_over, first_passed_at, now)
