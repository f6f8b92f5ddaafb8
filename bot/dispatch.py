"""The dispatch side of the engine: what workers ask of the queue (bot/worker.py `WorkSource`).

A worker waits here for the next job its backend can run, and hands back each outcome: complete, requeue,
the timing it measured. Mixed into the Engine (which owns the state used here) above delivery.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from bot import presenter
from bot.delivery import Delivery
from bot.models import DeliveryState, Job, JobState, StoredImage, utcnow
from bot.pool import BackendPool, PoolPolicy
from bot.privacy import hides
from bot.scheduler import FairScheduler, QueuedJob

if TYPE_CHECKING:
    from bot.worker import Worker

log = logging.getLogger(__name__)

DEFAULT_SECONDS_PER_STEP = 0.15  # at one megapixel, before anything was measured


class Dispatch(Delivery):
    """The worker side of the Engine: it implements `WorkSource` for every worker."""

    store_counts_attempts = False  # the worker counts them (bot/shared_queue.py: the store, at each claim)
    scheduler: FairScheduler
    pool: BackendPool
    requeue_on_stop: set[str]
    moved_from: dict[str, str]
    on_finished: Callable[[Job], None] | None
    _work: asyncio.Condition
    _jobs: dict[str, Job]
    _picked: dict[str, QueuedJob]
    _cancel_requested: set[str]
    _seconds_per_step: dict[str, float]

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

    def estimate_seconds(self, job: Job) -> float:
        """Expected generation time from the measured seconds per step of its preset."""
        request = job.request
        per_step = self._seconds_per_step.get(request.preset, DEFAULT_SECONDS_PER_STEP)
        return per_step * request.step_megapixels * request.count

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
        """Workers waiting for a job look at the queue again (a server resumed, a backend came back)."""
        async with self._work:
            self._work.notify_all()

    def cancel_requested(self, job_id: str) -> bool:
        """Whether a user cancelled this running job (its outcome is then "cancelled", whatever it was)."""
        return job_id in self._cancel_requested

    def stop_requested(self, job_id: str) -> bool:
        """Whether a shutdown interrupted this running job (it goes back in the queue, not to the user)."""
        return job_id in self.requeue_on_stop

    def take_move_note(self, job_id: str) -> str:
        """Why the job left the backend that had it (shown with its progress elsewhere), once."""
        return self.moved_from.pop(job_id, "")

    def note_move(self, job_id: str, note: str) -> None:
        """Remember why the job is being moved to another backend (or retried), for its next worker."""
        self.moved_from[job_id] = note

    def released(self) -> None:
        """A worker finished a job or its delivery (a graceful shutdown waits for these)."""
        self.worker_changed.set()

    def pool_policy(self) -> PoolPolicy:
        """How backends are watched: health check delays, errors in a row before leaving the rotation."""
        return self.pool.policy

    def why_waiting(self, lang: str | None) -> str:
        """Why jobs wait when no backend is available, in the job's language."""
        return self.pool.why_waiting(lang)

    def waiting_reason(self, job: Job) -> str | None:
        """Why this job will wait for a backend (each one that can run it is down or drained), in the job's
        language; None when one of them takes jobs."""
        return self.pool.why_job_waits(lambda worker: self.router.runs(worker, job), presenter.lang_of(job))

    def note_timing(self, preset: str, seconds_per_step: float) -> None:
        """A measured generation speed of this preset (an average that follows change), for estimates."""
        old = self._seconds_per_step.get(preset)
        self._seconds_per_step[preset] = seconds_per_step if old is None else 0.7 * old + 0.3 * seconds_per_step

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
