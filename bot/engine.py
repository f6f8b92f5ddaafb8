"""The engine: the one implementation of the Jobs port (bot/jobs.py) over one process's memory and the store.

It owns the queue, the workers and the outcome of every job: its halves live beside it, each a layer of one
class: delivery (bot/delivery.py), what workers ask (bot/dispatch.py), the read side (bot/views.py) and
submission (bot/intake.py). Here: wiring, start, recovery, graceful shutdown and cancel.
Every state change is written to the store before anyone is told about it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence

from bot import presenter
from bot.delivery import DELIVERY_RETRY_SECONDS
from bot.errors import NotFound
from bot.i18n import t
from bot.intake import Intake
from bot.jobs import BackendState, PauseRecords, Ticket
from bot.lifecycle import stop_tasks
from bot.models import Job, JobState
from bot.notify import StatusNotifier
from bot.placement import NOWHERE, BatchedPlacement
from bot.pool import BackendPool, PoolPolicy
from bot.ports import Backend, ImageFiles, JobStore, Outbound
from bot.positions import PositionUpdates
from bot.presets import Preset
from bot.queue_store import DrainRecords
from bot.routing import Router
from bot.scheduler import FairScheduler, QueuedJob
from bot.settings import Settings
from bot.worker import Worker

__all__ = ["DELIVERY_RETRY_SECONDS", "Engine", "Ticket"]  # read here by tests and older imports

log = logging.getLogger(__name__)


def give_up(job: Job) -> None:
    """The job's runner died at its last attempt (the bot or the backend's host stopped while running it, every
    time): it ends failed, saying so, rather than be started again forever."""
    log.warning("job %s: its runner stopped at each of its %d attempts; not tried again", job.id, job.attempts)
    job.state = JobState.FAILED
    job.error = t(presenter.lang_of(job), "backend.gave_up", count=job.attempts)


class Engine(Intake):
    """Owns the queue, the workers and the outcome of every job; callers see it as `Jobs`, workers as
    `WorkSource`."""

    def __init__(
        self,
        *,
        settings: Settings,
        store: JobStore,
        files: ImageFiles,
        backends: Sequence[Backend],
        outbounds: dict[str, Outbound],
        pool_policy: PoolPolicy | None = None,
        pauses: PauseRecords | None = None,
        drains: DrainRecords | None = None,
    ) -> None:
        self.settings = settings
        self.store = store
        self.files = files
        self.outbounds = outbounds
        config = settings.scheduler
        self.scheduler = FairScheduler(
            affinity=config.affinity,
            window=config.affinity_window,
            max_pass_over=config.max_pass_over,
            max_pass_over_seconds=config.max_pass_over_seconds,
        )
        self.pauses = pauses
        self.drains = drains  # backends an admin drained, kept across restarts
        self.notifier = StatusNotifier(outbounds)
        self.workers: list[Worker] = []
        self.router = Router(self.workers, settings.presets)  # holds this list: the workers are added below
        for backend in backends:
            worker = Worker(
                self, backend, store=store, files=files, notifier=self.notifier, router=self.router, settings=settings
            )
            self.workers.append(worker)
        self.pool = BackendPool(self.workers, pool_policy)
        self._picked: dict[str, QueuedJob] = {}  # running jobs' queue entries, so a requeue keeps their place
        self._work = asyncio.Condition()
        self._jobs: dict[str, Job] = {}  # queued and running jobs, by id
        self._cancel_requested: set[str] = set()
        self._seconds_per_step: dict[str, float] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self._delivering: set[str] = set()
        self._delivery_failures: dict[str, int] = {}
        self._next_delivery: dict[str, float] = {}
        self._finished: dict[str, asyncio.Event] = {}
        self._placement = BatchedPlacement(self.places)
        self.positions = PositionUpdates(self, self.notifier.publish)  # waiting jobs' messages follow the queue
        self.scheduler.on_change = self.positions.poke
        self.stopping = False
        self.draining = False
        self.requeue_on_stop: set[str] = set()
        self.moved_from: dict[str, str] = {}  # job id -> why it left the backend that failed it, for its progress
        self.worker_changed = asyncio.Event()  # set when a worker finishes a job or its delivery
        self.on_finished: Callable[[Job], None] | None = None  # metrics
        self.gone_chats: set[tuple[str, str]] = set()  # (platform, channel) the bot was removed from or blocked in

    # ---- lifecycle -------------------------------------------------------------------------

    async def start(self) -> None:
        """Recover from the store (paused servers too), start one worker per backend, deliver what was not."""
        self._seconds_per_step = await self.store.timings()
        if self.pauses is not None:
            for key in await self.pauses.paused_servers():
                self.scheduler.pause(key)
        if self.drains is not None:
            drained = await self.drains.drained_backends()
            for worker in self.workers:
                worker.drained = worker.backend.name.lower() in drained
        await self.recover()
        loop = asyncio.get_running_loop()
        self._tasks = [loop.create_task(worker.run(), name=f"worker-{worker.backend.name}") for worker in self.workers]
        self._tasks.append(loop.create_task(self._delivery_loop(), name="delivery"))
        self._tasks.append(loop.create_task(self.pool.watch(), name="pool-health"))
        self._tasks.append(loop.create_task(self.positions.run(), name="queue-positions"))

    async def drain(self, grace_seconds: float) -> None:
        """Graceful shutdown: start nothing new, let running jobs finish and be delivered within the grace period.

        A job still running afterwards is interrupted on its backend and put back in the queue in the store,
        so the next start runs it first.
        """
        self.draining = True
        loop = asyncio.get_running_loop()
        deadline = loop.time() + grace_seconds
        # Workers finishing jobs, and deliveries already under way (a result the platform has accepted must be
        # marked delivered before we exit, or the next start would send it again).
        while (any(worker.busy for worker in self.workers) or self._delivering) and loop.time() < deadline:
            self.worker_changed.clear()
            try:
                async with asyncio.timeout(deadline - loop.time()):
                    await self.worker_changed.wait()
            except TimeoutError:
                break
        for worker in self.workers:
            job = worker.current
            if job is not None:
                log.info("job %s still running at shutdown: interrupting it and requeueing it", job.id)
                self.requeue_on_stop.add(job.id)
                await worker.interrupt()
        if self.requeue_on_stop:
            try:
                async with asyncio.timeout(5.0):  # let the workers see the interrupt and requeue their jobs
                    while any(worker.current is not None for worker in self.workers):
                        self.worker_changed.clear()
                        await self.worker_changed.wait()
            except TimeoutError:
                pass
        for worker in self.workers:
            if worker.current is not None:  # the backend did not answer the interrupt: requeue in the store
                worker.current.state = JobState.QUEUED
                worker.current.backend = None
                await self.store.save(worker.current)

    def busy_workers(self) -> int:
        """How many backends still run a job or store and deliver one."""
        return sum(1 for worker in self.workers if worker.busy)

    async def stop(self) -> None:
        self.stopping = True
        await stop_tasks(self._tasks)
        await self.notifier.aclose()

    async def recover(self) -> None:
        """Requeue queued and interrupted running jobs in their original order, their status messages to follow the
        queue again; a running job whose attempts are used up ends failed (each start may be what stopped the bot)."""
        pending = await self.store.in_states([JobState.RUNNING, JobState.QUEUED])
        pending.sort(key=lambda job: (job.state is not JobState.RUNNING, job.created_at))
        for job in pending:
            if job.state is JobState.RUNNING and job.attempts >= self.settings.limits.max_attempts:
                give_up(job)
                await self.complete(job, [], None)
                continue
            if job.state is JobState.RUNNING:
                log.info("job %s was running when the bot stopped; running it again", job.id)
                job.state = JobState.QUEUED
                await self.store.save(job)
            self._enqueue(job)
            self.positions.told(job.id, NOWHERE)  # its message shows the place it had before: shown again
        if pending:
            log.info("recovered %d queued jobs", len(pending))

    async def set_drained(self, name: str, drained: bool) -> BackendState | None:
        worker = self.pool.named(name)
        if worker is not None and self.drains is not None:
            await self.drains.record_drain(worker.backend.name, drained)  # stored first: a restart keeps it
        return await super().set_drained(name, drained)

    def remote_backends(self) -> list[BackendState]:
        """Other processes' backends (with their loaded checkpoint and current job): none with one process."""
        return []

    def preset(self, name: str) -> Preset | None:
        return self.settings.presets.get(name)

    # ---- cancel ------------------------------------------------------------------------------

    async def cancel(self, job_id: str) -> Job:
        """Cancel a queued job at once, or interrupt a running one. Raises NotFound if it is over."""
        job = self._jobs.get(job_id)
        if job is None:
            raise NotFound.of("error.cancel_not_active", job=job_id)
        if self.scheduler.remove(job_id) is not None:
            job.state = JobState.CANCELLED
            await self.complete(job, [], None)
            return job
        self._cancel_requested.add(job_id)
        for worker in self.workers:
            if worker.current is not None and worker.current.id == job_id:
                await worker.interrupt()
        return job

    # ---- delivery ----------------------------------------------------------------------------

    async def _delivery_loop(self) -> None:
        while True:
            try:
                await self.deliver_pending()
            except Exception:
                log.exception("delivery sweep failed")
            await asyncio.sleep(DELIVERY_RETRY_SECONDS)  # read here, so tests can shorten the sweep

    def outbound_for(self, job: Job) -> Outbound | None:
        return self.outbounds.get(job.destination.platform)
