"""The engine: durable submission, fair dispatch to backend workers, cancel, recovery and delivery.

Every state change is written to the store before anyone is told about it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from bot import presenter
from bot.delivery import DELIVERY_RETRY_SECONDS, Delivery
from bot.errors import NotFound
from bot.lifecycle import stop_tasks
from bot.models import DeliveryState, Job, JobState, StoredImage, utcnow
from bot.placement import NOWHERE, BatchedPlacement, Place, engine_places, queue_order
from bot.pool import BackendPool, PoolPolicy
from bot.ports import Backend, ImageFiles, JobStore, Outbound, QuotaLimits
from bot.presets import Preset
from bot.privacy import hides
from bot.routing import Router
from bot.scheduler import FairScheduler, QueuedJob
from bot.settings import Settings

if TYPE_CHECKING:
    from bot.worker import Worker

log = logging.getLogger(__name__)

DEFAULT_SECONDS_PER_STEP = 0.15  # at one megapixel, before anything was measured


@dataclass
class Ticket:
    """What the user is told when a job is accepted."""

    job: Job
    position: int | None
    eta_seconds: float | None
    paused: bool = False


class Engine(Delivery):
    """Owns the queue, the workers and the outcome of every job."""

    def __init__(
        self,
        *,
        settings: Settings,
        store: JobStore,
        files: ImageFiles,
        backends: Sequence[Backend],
        outbounds: dict[str, Outbound],
        pool_policy: PoolPolicy | None = None,
    ) -> None:
        from bot.notify import StatusNotifier
        from bot.positions import PositionUpdates
        from bot.worker import Worker

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
        self.notifier = StatusNotifier(outbounds)
        self.workers = [Worker(self, backend) for backend in backends]
        self.pool = BackendPool(self.workers, pool_policy)
        self.router = Router(self.workers, settings.presets)
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
        self.positions = PositionUpdates(self)  # waiting jobs' messages follow the queue
        self.stopping = False
        self.draining = False
        self.requeue_on_stop: set[str] = set()
        self.moved_from: dict[str, str] = {}  # job id -> why it left the backend that failed it, for its progress
        self.worker_changed = asyncio.Event()  # set when a worker finishes a job or its delivery
        self.on_finished: Callable[[Job], None] | None = None  # metrics
        self.gone_chats: set[tuple[str, str]] = set()  # (platform, channel) the bot was removed from or blocked in

    # ---- lifecycle -------------------------------------------------------------------------

    async def start(self) -> None:
        """Recover from the store, start one worker per backend and deliver what was not delivered."""
        self._seconds_per_step = await self.store.timings()
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

    async def stop(self) -> None:
        self.stopping = True
        await stop_tasks(self._tasks)
        await self.notifier.aclose()

    async def recover(self) -> None:
        """Requeue queued and interrupted running jobs in their original order."""
        pending = await self.store.in_states([JobState.RUNNING, JobState.QUEUED])
        pending.sort(key=lambda job: (job.state is not JobState.RUNNING, job.created_at))
        for job in pending:
            if job.state is JobState.RUNNING:
                log.info("job %s was running when the bot stopped; running it again", job.id)
                job.state = JobState.QUEUED
                await self.store.save(job)
            self._enqueue(job)
        if pending:
            log.info("recovered %d queued jobs", len(pending))

    # ---- submission and queries ------------------------------------------------------------

    def preset(self, name: str) -> Preset | None:
        return self.settings.presets.get(name)

    async def submit(self, job: Job, limits: QuotaLimits | None, max_queued: int | None = None) -> Ticket:
        """Refuse what no backend can run; store the job with its quota reservation and queue cap check
        (atomically), then queue it."""
        self.router.check_request(job.request)
        await self.store.create(job, limits, max_queued)
        self.gone_chats.discard((job.destination.platform, job.destination.channel_id))  # it talks to us again
        self._enqueue(job)
        position, eta = await self._placement.place(job.id)  # before a worker can take it
        self.positions.told(job.id, (position, eta))
        paused = self.scheduler.is_paused(job.queue_key)
        if getattr(self.outbounds.get(job.destination.platform), "owns_status", False):
            # The status message is the outbound's from its first post: queued, progress and result in one stream.
            self.notifier.publish(job, presenter.queued(job, position, eta, paused))
        async with self._work:
            self._work.notify_all()
        if self.pool.all_down():
            reason = self.pool.why_waiting(presenter.lang_of(job))
            self.notifier.publish(job, presenter.waiting_for_backend(job, reason))
        return Ticket(job=job, position=position, eta_seconds=eta, paused=paused)

    async def submit_all(self, jobs: list[Job], limits: QuotaLimits | None, max_queued: int | None = None) -> Ticket:
        """Jobs of one command (a wildcard expansion), stored and charged all or none; the first one's ticket."""
        for job in jobs:
            self.router.check_request(job.request)
        await self.store.create_all(jobs, limits, max_queued)
        for job in jobs:
            self._enqueue(job)
            if self.pool.all_down():
                reason = self.pool.why_waiting(presenter.lang_of(job))
                self.notifier.publish(job, presenter.waiting_for_backend(job, reason))
        position, eta = await self._placement.place(jobs[0].id)
        paused = self.scheduler.is_paused(jobs[0].queue_key)
        if getattr(self.outbounds.get(jobs[0].destination.platform), "owns_status", False):
            # The first job's status message is the command's answer: the list of what the prompt became.
            self.notifier.publish(jobs[0], presenter.expanded(jobs, position, eta, paused))
        async with self._work:
            self._work.notify_all()
        return Ticket(job=jobs[0], position=position, eta_seconds=eta, paused=paused)

    def queued_count(self, platform: str, user_id: str) -> int:
        """How many jobs this user has waiting (kept as a count: every /imagine asks)."""
        return self.scheduler.user_count(f"{platform}:{user_id}")

    def _enqueue(self, job: Job) -> None:
        self._jobs[job.id] = job
        self.scheduler.add(
            QueuedJob(
                job_id=job.id,
                server=job.queue_key,
                user=f"{job.destination.platform}:{job.destination.user_id}",
                cost=max(job.cost, 0.001),
                checkpoint=job.request.checkpoint,
                preset=job.request.preset,
                priority=job.priority,
                estimate=self.estimate_seconds(job),
            )
        )

    def active_job(self, job_id: str) -> Job | None:
        return self._jobs.get(job_id)

    def active_jobs_in(self, platform: str, channel_id: str) -> list[Job]:
        """Queued and running jobs whose answers go to this channel."""
        return [
            job
            for job in self._jobs.values()
            if job.destination.platform == platform and job.destination.channel_id == channel_id
        ]

    def queued_jobs(self, server: str | None = None) -> list[tuple[int, Job]]:
        """Queued jobs in the order backends will start them, with their 1-based position, optionally for one server."""
        return queue_order(self, [job for job in self._jobs.values() if job.id in self.scheduler], server)

    def running_jobs(self) -> list[Job]:
        return [job for job in self._jobs.values() if job.state is JobState.RUNNING]

    def estimate_seconds(self, job: Job) -> float:
        """Expected generation time from the measured seconds per step of its preset."""
        request = job.request
        per_step = self._seconds_per_step.get(request.preset, DEFAULT_SECONDS_PER_STEP)
        return per_step * request.step_megapixels * request.count

    def eta(self, job_id: str) -> float | None:
        return self.place(job_id)[1]

    def place(self, job_id: str) -> Place:
        """1-based position in the fair order and seconds until likely done."""
        return self.places([job_id]).get(job_id, NOWHERE)

    def places(self, job_ids: Collection[str]) -> dict[str, Place]:
        """Positions and ETAs of several jobs from one forecast of the queue (affinity and routing included)."""
        return engine_places(self, job_ids)

    def note_timing(self, preset: str, seconds_per_step: float) -> None:
        old = self._seconds_per_step.get(preset)
        self._seconds_per_step[preset] = seconds_per_step if old is None else 0.7 * old + 0.3 * seconds_per_step

    # ---- worker side -----------------------------------------------------------------------

    async def next_job(self, worker: Worker) -> Job:
        """Wait until there is a job this worker's backend can run, and take it (fair, with affinity)."""

        def runs(entry: QueuedJob) -> bool:
            job = self._jobs.get(entry.job_id)
            if (
                job is not None
                and not hides(job)
                and (job.destination.platform, job.destination.channel_id) in self.gone_chats
            ):
                return False  # a job for a chat the bot was removed from waits for its cancel (not a private one)
            return job is None or self.router.runs(worker, job)

        async with self._work:
            while True:
                if self.draining or worker.drained:  # shutting down, or an admin drained this backend
                    await self._work.wait()
                    continue
                entry = self.scheduler.pick(runs, worker.loaded_checkpoint)
                if entry is not None:
                    job = self._jobs.get(entry.job_id)
                    if job is not None:
                        self._picked[job.id] = entry
                        return job
                    continue
                await self._work.wait()

    async def requeue(self, job: Job) -> None:
        """Put a running job back in the queue (its backend failed), where it stood in its user's line."""
        job.state = JobState.QUEUED
        job.backend = None
        await self.store.save(job)
        entry = self._picked.pop(job.id, None)
        if entry is None:
            self._enqueue(job)
        else:
            self._jobs[job.id] = job
            self.scheduler.requeue(entry)
        async with self._work:
            self._work.notify_all()

    async def fail_stranded(self) -> None:
        """Fail (and refund) queued jobs that no backend can run any more, saying why."""
        queued = [job for job in self._jobs.values() if job.state is JobState.QUEUED and job.id in self.scheduler]
        for job, error in self.router.stranded(queued):
            if self.scheduler.remove(job.id) is None:
                continue
            log.warning("job %s: no backend can run it any more: %s", job.id, error)
            job.state = JobState.FAILED
            job.error = error.localized(presenter.lang_of(job))
            await self.complete(job, [], None)

    async def wake_workers(self) -> None:
        async with self._work:
            self._work.notify_all()

    def cancel_requested(self, job_id: str) -> bool:
        return job_id in self._cancel_requested

    async def complete(self, job: Job, images: Sequence[StoredImage], actual_cost: float | None) -> None:
        """Store the final outcome (with quota settlement) and then deliver it."""
        job.finished_at = utcnow()
        job.delivery = DeliveryState.PENDING
        await self.store.finish(job, images, actual_cost)
        if self.on_finished is not None:
            self.on_finished(job)
        self._jobs.pop(job.id, None)
        self._picked.pop(job.id, None)
        self.router.forget(job.id)
        self._cancel_requested.discard(job.id)
        self.moved_from.pop(job.id, None)
        await self.deliver(job, images)

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
