"""The engine over a queue several bot processes share (PostgreSQL): workers claim jobs from the store.

Next job = a claim for the worker's backend, in the fair order computed against the shared ledger (woken by
the store's signal of new work, with a timeout as a safety net). While a job runs its lease is renewed every
third of the lease: LOST (the lease lapsed and another process has the job) stops it and drops its result;
CANCEL interrupts the backend. Complete = store the outcome, then release; requeue gives the job back.
The store counts attempts (each claim is one), not the worker. A finished job is delivered by whichever
process first takes its delivery lease: the one that ran it, or any process's sweep once that one is gone.
The read side (/queue, positions, running jobs) is a replica of the shared queue: bot/shared_views.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import socket
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from bot.engine import give_up
from bot.errors import NotFound
from bot.models import DeliveryState, Job, JobState, StoredImage, utcnow
from bot.presenter import lang_of
from bot.queue_store import CANCEL, LOST, JobClaims, QueueReader, WorkSignals
from bot.shared_backends import SharedBackends
from bot.shared_chats import SharedChats

if TYPE_CHECKING:
    from bot.worker import Worker

log = logging.getLogger(__name__)

DELIVERY_LEASE_SECONDS = 120.0  # longer than any send; a process that dies sending leaves it to another after


def owner_id() -> str:
    """This process among those sharing the queue: host:pid:random (a pid is reused after a restart); at most
    51 characters, so that "imagebridge " and it fit PostgreSQL's 63-character application name."""
    return f"{socket.gethostname()[:36]}:{os.getpid()}:{secrets.token_hex(3)}"


class SharedEngine(SharedChats, SharedBackends):
    """The Engine whose workers claim from the shared store instead of the in-memory scheduler (its backends,
    drains and pauses shared with the other processes: bot/shared_backends.py; its views read the shared queue:
    bot/shared_views.py; the chats the bot was removed from are stored for all: bot/shared_chats.py)."""

    store_counts_attempts = True

    def __init__(
        self,
        *,
        claims: JobClaims,
        signals: WorkSignals,
        queue: QueueReader,
        owner: str | None = None,
        lease_seconds: float = 30.0,
        poll_seconds: float = 5.0,
        **engine: Any,
    ) -> None:
        super().__init__(**engine)
        self.claims = claims
        self.signals = signals
        self.owner = owner or owner_id()
        self.lease_seconds = lease_seconds
        self.poll_seconds = poll_seconds
        self._renewing: dict[str, asyncio.Task[None]] = {}
        self._lost: set[str] = set()
        self._wakes = 0  # bumped on every signal: a claimer that saw none since its claim may sleep
        self._init_views(queue)

    # ---- lifecycle -----------------------------------------------------------------------------

    async def start(self) -> None:
        await super().start()
        loop = asyncio.get_running_loop()
        self._tasks.append(loop.create_task(self._relay_work(), name="shared-work"))
        self._tasks.append(loop.create_task(self._relay_cancels(), name="shared-cancels"))
        self._tasks.append(loop.create_task(self._relay_finished(), name="shared-finished"))

    async def recover(self) -> None:
        """Nothing to load: the queue is the store's. Jobs whose process died are queued again by their lease."""
        await self.claims.reap()
        await self._give_up_exhausted()

    async def _give_up_exhausted(self) -> None:
        """End as failed the jobs whose runner died at their last attempt (any process may; one takes each)."""
        try:
            for job in await self.claims.take_exhausted(self.owner, self.lease_seconds):
                self._taken(job)  # held like a claim until its outcome is stored
                give_up(job)
                await self.complete(job, [], None)
        except Exception:
            log.exception("ending jobs whose attempts are used up failed; trying again at the next poll")

    async def stop(self) -> None:
        for task in list(self._renewing.values()):
            task.cancel()
        await super().stop()

    async def _relay_work(self) -> None:
        while True:
            await self.signals.wait_for_work(self.poll_seconds)  # a timeout is a poll: the safety net
            await self._give_up_exhausted()
            await self.wake_workers()

    async def _relay_cancels(self) -> None:
        while True:
            job_id = await self.signals.next_cancel()
            if job_id in self._renewing and job_id not in self._cancel_requested:
                self._cancel_requested.add(job_id)
                await self._interrupt(job_id)

    async def _relay_finished(self) -> None:
        while True:
            await self.signals.wait_for_finished()
            try:
                await self.deliver_pending()  # what another process finished and could not send
            except Exception:
                log.exception("delivery sweep failed")

    async def wake_workers(self) -> None:
        self._wakes += 1
        async with self._work:
            self._work.notify_all()

    # ---- what workers ask (WorkSource) ---------------------------------------------------------

    async def next_job(self, worker: Worker) -> Job:
        """Claim the next job this worker's backend can run; wait for a signal (or the poll) when there is none."""
        while True:
            seen = self._wakes
            if not (self.draining or worker.drained):
                job = await self.claims.claim(
                    [worker.backend.name],
                    self.owner,
                    self.lease_seconds,
                    loaded_checkpoint=worker.loaded_checkpoint,
                    fit_marks=[worker.fit_mark],
                )
                if job is not None and await self._runs_here(worker, job):
                    return self._taken(job)
            async with self._work:
                if seen == self._wakes:
                    with contextlib.suppress(TimeoutError):
                        async with asyncio.timeout(self.poll_seconds):
                            await self._work.wait()

    async def _runs_here(self, worker: Worker, job: Job) -> bool:
        if await self.gone_here(job):  # its chat is gone: it ends cancelled (refunded) rather than wait for it
            self._taken(job)
            await self.end_gone(job)
            return False
        if self.router.runs(worker, job):
            return True
        # The claim filters by backend; finer fits (what this backend lacks) are known here: give it back, marked
        # so that this backend, as long as what it has stays the same, is not offered it again.
        log.info("job %s does not fit backend %s here; given back", job.id, worker.backend.name)
        await self.claims.requeue(job.id, self.owner, job.attempts - 1, worker.fit_mark)
        return False

    def _taken(self, job: Job) -> Job:
        self._jobs[job.id] = job
        renew = asyncio.get_running_loop().create_task(self._renew(job.id), name=f"lease-{job.id}")
        self._renewing[job.id] = renew
        self.backends_changed()
        return job

    async def _renew(self, job_id: str) -> None:
        while True:
            await asyncio.sleep(self.lease_seconds / 3)
            try:
                lease = await self.claims.renew(job_id, self.owner, self.lease_seconds)
            except Exception:
                log.exception("job %s: renewing its lease failed; trying again", job_id)
                continue
            if lease == LOST:
                log.warning("job %s: its lease was lost (another process has it); stopping it here", job_id)
                self._lost.add(job_id)
                await self._interrupt(job_id)
                return
            if lease == CANCEL and job_id not in self._cancel_requested:
                self._cancel_requested.add(job_id)
                await self._interrupt(job_id)

    async def _interrupt(self, job_id: str) -> None:
        for worker in self.workers:
            if worker.current is not None and worker.current.id == job_id:
                await worker.interrupt()

    def _let_go(self, job_id: str) -> bool:
        """Stop renewing; True if this process held the job's lease."""
        renew = self._renewing.pop(job_id, None)
        if renew is not None:
            renew.cancel()
        self._jobs.pop(job_id, None)
        self._picked.pop(job_id, None)
        return renew is not None

    async def requeue(self, job: Job) -> None:
        """Give the job back to the shared queue (its backend failed, or this process stops)."""
        held = self._let_go(job.id)
        job.state, job.backend = JobState.QUEUED, None
        if held and job.id not in self._lost:
            await self.claims.requeue(job.id, self.owner, job.attempts)
        self._lost.discard(job.id)

    async def complete(self, job: Job, images: Sequence[StoredImage], actual_cost: float | None) -> None:
        """Store the outcome and release the lease, then deliver; a job whose lease was lost is dropped."""
        held = self._let_go(job.id)
        lost = job.id in self._lost
        if held and not lost:  # the last word before storing: a lease that lapsed meanwhile is another's now
            lost = await self.claims.renew(job.id, self.owner, self.lease_seconds) == LOST
        self._lost.discard(job.id)
        if lost:
            log.warning("job %s: finished here after its lease was lost; the result is dropped", job.id)
            return
        job.finished_at = utcnow()
        job.delivery = DeliveryState.PENDING
        await self.store.finish(job, images, actual_cost)
        self.replica.forget(job.id)  # this process's views no longer show it, whatever a read in flight says
        if held:
            await self.claims.release(job.id, self.owner)
        if self.on_finished is not None:
            self.on_finished(job)
        self.router.forget(job.id)
        self._cancel_requested.discard(job.id)
        self.moved_from.pop(job.id, None)
        if job.destination.platform not in self.outbounds:  # a worker-only process: one that can sends it
            await self.claims.notify_finished(job.id)
            return
        await self.deliver(job, images)

    async def fail_stranded(self) -> None:
        """Fail (and refund) queued jobs no backend of any process can run any more, saying why, as one process
        does (bot/routing.py `stranded_anywhere`, over the board); the store ends each once, whoever judges it."""
        queued = [job for job_id, job in self.replica.queued.items() if job_id not in self._jobs]
        found = {stranded.job.id: stranded for stranded in self.router.stranded_anywhere(queued)}
        errors = [(job_id, one.marks, one.error.localized(lang_of(one.job))) for job_id, one in found.items()]
        try:
            for job in await self.claims.strand(errors):
                log.warning("job %s: no backend of any process can run it any more: %s", job.id, found[job.id].error)
                await self.complete(job, [], None)  # stored failed and refunded already; this delivers it
        except Exception:  # a worker's health check calls this: the store's trouble must not stop the worker
            log.exception("ending the jobs no backend can run failed; judged again at the next read of the board")

    # ---- delivery: once, by whichever process takes the delivery lease ---------------------------

    async def deliver(self, job: Job, images: Sequence[StoredImage] | None = None) -> bool:
        if job.destination.platform not in self.outbounds or job.id in self._delivering:
            return False
        if not await self.claims.claim_delivery(job.id, self.owner, DELIVERY_LEASE_SECONDS):
            return False  # delivered already, or another process is sending it
        if not self._channel_gone(job):
            await self.first_post(job)  # a status message the command's process is posting: the result replaces it
        sent = await super().deliver(job, images)
        if job.delivery is DeliveryState.PENDING:
            await self.claims.release_delivery(job.id, self.owner)
        return sent

    async def deliver_pending(self) -> None:
        """The sweep, one line per chat at once: here it also sends what worker-only processes finished."""
        now = asyncio.get_running_loop().time()
        lines: dict[tuple[str, str], list[Job]] = {}
        for job in await self.store.undelivered():
            if job.id not in self._delivering and self._next_delivery.get(job.id, 0.0) <= now:
                lines.setdefault((job.destination.platform, job.destination.channel_id), []).append(job)
        await asyncio.gather(*(self._deliver_line(line) for key, line in lines.items() if key[0] in self.outbounds))

    async def _deliver_line(self, line: list[Job]) -> None:
        for listed in line:  # in order within a chat; read again just before its turn
            if self.draining:
                return
            job = await self.store.get(listed.id)
            if job is not None and job.delivery is DeliveryState.PENDING:
                await self.deliver(job)

    # ---- cancel, from any process ----------------------------------------------------------------

    async def cancel(self, job_id: str) -> Job:
        """A queued job is cancelled here at once (refunded); a running one is interrupted where it runs."""
        job = await self.claims.cancel_queued(job_id)
        if job is not None:
            await self.complete(job, [], None)
            return job
        job = await self.store.get(job_id)
        if job is None or job.state is not JobState.RUNNING:
            raise NotFound.of("error.cancel_not_active", job=job_id)
        await self.claims.request_cancel(job_id)  # NOTIFY: the process that runs it interrupts its backend
        return job

    # ---- pause: stored, seen by every process's claims ---------------------------------------------

    async def resume(self, queue_key: str) -> None:
        await super().resume(queue_key)
        await self.claims.notify_work()
