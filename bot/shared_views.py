"""The read side of the Jobs port over a queue several processes share (PostgreSQL): a replica of the queue.

Each process keeps the shared queue as last read from the store (bot/queue_store.py QueueReader: queued jobs
in the fair order every claim follows, running jobs with the process that runs them, paused servers) and reads
it again when the store signals a change — a job queued, claimed, finished, cancelled or given back, a server
paused or resumed — with a poll as the safety net; reads are coalesced (bot/queue_replica.py). `/queue`,
positions and ETAs, `queued_jobs`, `running_jobs`, `active_job`... read the replica (this process's running
jobs from its workers, which are fresher), so every process shows the same queue. A submit waits for a read
that started after its insert, so its ticket counts every process's jobs.

Waiting jobs' status messages are edited by the process that took the command (it posted the message and told
its first place; bot/positions.py keeps them in memory): the replica's refresh moves them when jobs ahead
start anywhere. The job's row names that process (STATUS_OWNER in its messages). Once another process runs the
job, this one ends its status stream (nothing it still had to show may follow that process's progress). If
the process that took the command dies (its connection to the store is gone), the first process with that
platform to see it takes its waiting jobs over, one taker per job (`adopt_status`), and edits them from then on.

A process that runs a job whose status message the command's process is still posting (it claimed the job before
that post's id was recorded) waits for that id before it shows anything (`first_post`), so it edits that message
rather than post a second one; it posts one itself if that process is gone or the wait runs out.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import datetime

from bot.engine import Engine
from bot.jobs import Ticket
from bot.models import Job, JobState, utcnow
from bot.placement import NOWHERE, FairOrder, Lane, queue_order
from bot.ports import QuotaLimits
from bot.queue_replica import QueueReplica, ReplicaOrder
from bot.queue_store import STATUS_OWNER, JobClaims, QueueReader, WorkSignals
from bot.routing import BackendFit
from bot.scheduler import QueuedJob

log = logging.getLogger(__name__)

FIRST_POST_WAIT_SECONDS = 10.0  # the command's process posts a status message within this (a flood wait aside)
FIRST_POST_CHECKS = (0.05, 0.1, 0.2, 0.4)  # seconds between the first looks at the row, then every last one


class SharedViews(Engine):
    """The Engine's read side over the replica of the shared queue (bot/shared_queue.py SharedEngine uses it)."""

    owner: str
    claims: JobClaims
    signals: WorkSignals
    poll_seconds: float
    replica: QueueReplica

    def _init_views(self, queue: QueueReader) -> None:
        self.replica = QueueReplica(queue, self._queue_moved)
        self._handing_over: set[asyncio.Task[None]] = set()
        self._adopting: asyncio.Task[None] | None = None
        self.first_post_wait = FIRST_POST_WAIT_SECONDS
        self.notifier.before_first = self.first_post

    def _queue_moved(self) -> None:
        """After each read: waiting jobs are placed again; a job another process now runs is its status's; the
        waiting jobs of a process that is gone are taken over."""
        self.positions.poke()
        if self._adopting is None or self._adopting.done():
            self._adopting = asyncio.get_running_loop().create_task(self._adopt_orphans(), name="adopt-statuses")
        for job_id in self.notifier.streams():
            running = self.replica.running.get(job_id)
            if running is not None and running.owner != self.owner and job_id not in self._jobs:
                task = asyncio.get_running_loop().create_task(self.notifier.finish(job_id), name=f"handover-{job_id}")
                self._handing_over.add(task)  # a position edit still pending here must not follow its progress
                task.add_done_callback(self._handing_over.discard)

    async def start(self) -> None:
        await super().start()
        loop = asyncio.get_running_loop()
        self._tasks.append(loop.create_task(self.replica.run(), name="shared-queue-view"))
        self._tasks.append(loop.create_task(self._relay_changes(), name="shared-queue-changes"))
        await self.replica.fresh(self.poll_seconds)

    async def stop(self) -> None:
        for task in [*self._handing_over, *([self._adopting] if self._adopting is not None else [])]:
            task.cancel()
        await super().stop()

    async def _relay_changes(self) -> None:
        while True:
            await self.signals.wait_for_change(self.poll_seconds)  # a timeout is a poll: the safety net
            self.replica.kick()

    async def _adopt_orphans(self) -> None:
        """Waiting jobs whose status process is gone: this one edits their messages from now on (if it can)."""
        live = self.replica.read.live
        if live is None:
            return
        for job in list(self.replica.queued.values()):
            gone = job.messages.get(STATUS_OWNER)
            if gone is None or gone == self.owner or gone in live or not self.owns_status(job):
                continue
            try:
                if not await self.replica.reader.adopt_status(job.id, gone, self.owner):
                    continue  # another process took it
            except Exception:
                log.exception("job %s: taking over its status messages failed", job.id)
                return
            log.info("job %s: its status messages are shown from this process now (%s is gone)", job.id, gone)
            job.messages[STATUS_OWNER] = self.owner
            self.positions.told(job.id, NOWHERE)  # what its message shows is not known here: shown again

    async def first_post(self, job: Job) -> None:
        """Before showing a job's status from here: if the process that took its command posts its status message
        and has not recorded it yet, wait (bounded) until it has, taking its id into `job`, so this process edits
        that message; return at once if that process is gone (its post may never come: this one posts)."""
        posted = getattr(self.outbounds.get(job.destination.platform), "status_posted", None)
        owner = job.messages.get(STATUS_OWNER)
        if posted is None or owner is None or owner == self.owner or posted(job):
            return
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.first_post_wait
        checks = iter(FIRST_POST_CHECKS)
        while True:
            found = await self.replica.reader.status_post(job.id)
            if found is None:
                return
            for key, value in found.messages.items():
                job.messages.setdefault(key, value)
            if posted(job) or not found.owner_live:
                return
            left = deadline - loop.time()
            if left <= 0:
                log.warning("job %s: %s has not posted its status message; posting it here", job.id, owner)
                return
            await asyncio.sleep(min(next(checks, FIRST_POST_CHECKS[-1]), left))

    # ---- submit: the store queues the job; the views read it from there ----------------------------

    async def submit(self, job: Job, limits: QuotaLimits | None, max_queued: int | None = None) -> Ticket:
        """As the Engine's; the job's row names this process as the one that shows its place while it waits
        (where the platform's status message can be edited from another process: the outbound owns it)."""
        if self.owns_status(job):
            job.messages[STATUS_OWNER] = self.owner
        return await super().submit(job, limits, max_queued)

    def _enqueue(self, job: Job) -> None:
        """Nothing to keep here: the job is queued in the store, which every process reads."""

    async def _queued_in_store(self) -> None:
        await self.replica.fresh(self.poll_seconds)

    # ---- the read side -------------------------------------------------------------------------

    def _live_job(self, job_id: str) -> Job | None:
        return self._jobs.get(job_id) or self.replica.job(job_id)  # a job running here: the worker's copy

    def _fair_order(self) -> FairOrder:
        entries = self.replica.entries(self.estimate_seconds, skip=self._jobs)
        return ReplicaOrder(entries, self.scheduler, self.replica.now())

    def lanes(self) -> list[Lane]:
        """This process's backends and every other process's (the board: bot/shared_backends.py), those taking
        jobs, each for the kinds and presets it can run; a job another process runs on a backend not on the board
        yet is a lane too."""
        remote = self._lanes_elsewhere()
        if remote and not any(worker.healthy and not worker.drained for worker in self.workers):
            return remote  # super() would fall back to this process's backends that take nothing
        return [*super().lanes(), *remote]

    def _lanes_elsewhere(self) -> list[Lane]:
        now, lanes, on_board = utcnow(), [], set()
        for state in self.remote_backends():
            on_board.add((state.process, state.name))
            if state.healthy and not state.drained:
                lanes.append(self._lane(state.current, state.loaded, state.name, now, state.fit))
        for running in self.replica.running.values():
            job = running.job
            if (
                running.owner != self.owner
                and job.id not in self._jobs
                and (running.owner, job.backend) not in on_board
            ):
                lanes.append(self._lane(job, job.request.checkpoint, job.backend, now))
        return lanes

    def _lane(
        self, current: Job | None, loaded: str | None, backend: str | None, now: datetime, fit: BackendFit | None = None
    ) -> Lane:
        left = 0.0
        if current is not None:
            left, loaded = self.seconds_left(current, now), current.request.checkpoint
        return Lane(left, loaded, self._runs_beside(backend, fit))

    def _runs_beside(self, backend: str | None, fit: BackendFit | None) -> Callable[[QueuedJob], bool]:
        def runs(entry: QueuedJob) -> bool:  # a job given back to resume on one backend waits for that one
            job = self._live_job(entry.job_id)
            if job is None:
                return True
            if fit is not None and fit.why_not(job.request.kind, job.request.preset) is not None:
                return False  # its process says it cannot run this kind of job on this preset
            return job.backend is None or job.backend == backend

        return runs

    def queued_count(self, platform: str, user_id: str) -> int:
        return self.replica.users.get(f"{platform}:{user_id}", 0)

    def queue_length(self) -> int:
        return len(self.replica.queued)

    def is_queued(self, job_id: str) -> bool:
        return job_id in self.replica.queued and job_id not in self._jobs

    def active_job(self, job_id: str) -> Job | None:
        return self._live_job(job_id)

    def active_jobs_in(self, platform: str, channel_id: str) -> list[Job]:
        live = [*self.running_jobs(), *(job for job_id, job in self.replica.queued.items() if job_id not in self._jobs)]
        return [job for job in live if (job.destination.platform, job.destination.channel_id) == (platform, channel_id)]

    def running_jobs(self) -> list[Job]:
        here = [job for job in self._jobs.values() if job.state is JobState.RUNNING]
        elsewhere = [one.job for job_id, one in self.replica.running.items() if job_id not in self._jobs]
        jobs = [*here, *elsewhere]
        jobs.sort(key=lambda job: job.started_at or job.created_at)
        return jobs

    def queued_jobs(self, server: str | None = None) -> list[tuple[int, Job]]:
        queued = [job for job_id, job in self.replica.queued.items() if job_id not in self._jobs]
        return queue_order(self.places([job.id for job in queued]), queued, server)

    # ---- pause: stored, then read back (every process's view follows) ------------------------------

    async def pause(self, queue_key: str) -> None:
        await super().pause(queue_key)
        await self.claims.notify_work()  # every process's view reads the queue again (its jobs leave the order)
        await self.replica.fresh(self.poll_seconds)

    async def resume(self, queue_key: str) -> None:
        await super().resume(queue_key)
        await self.replica.fresh(self.poll_seconds)
