"""The submit side of the Jobs port (bot/jobs.py): refuse what no backend can run, store the job with its quota
reservation, queue it and tell the user where it stands. Mixed into the Engine, which owns the state used here."""

from __future__ import annotations

from bot import presenter
from bot.jobs import Ticket
from bot.models import Job
from bot.placement import BatchedPlacement
from bot.ports import QuotaLimits
from bot.positions import PositionUpdates
from bot.views import QueueViews


class Intake(QueueViews):
    """Submission: every state change is written to the store before the user is told about it."""

    positions: PositionUpdates
    _placement: BatchedPlacement

    async def submit(self, job: Job, limits: QuotaLimits | None, max_queued: int | None = None) -> Ticket:
        self.router.check_request(job.request)
        await self.store.create(job, limits, max_queued)
        self.gone_chats.discard((job.destination.platform, job.destination.channel_id))  # it talks to us again
        self._enqueue(job)
        await self._queued_in_store()
        position, eta = await self._placement.place(job.id)  # before a worker can take it
        self.positions.told(job.id, (position, eta))
        paused = self.is_paused(job.queue_key)
        if self.owns_status(job):
            # The status message is the outbound's from its first post: queued, progress and result in one stream.
            self.notifier.publish(job, presenter.queued(job, position, eta, paused))
        async with self._work:
            self._work.notify_all()
        self._tell_if_waiting([job])
        return Ticket(job=job, position=position, eta_seconds=eta, paused=paused)

    async def submit_all(self, jobs: list[Job], limits: QuotaLimits | None, max_queued: int | None = None) -> Ticket:
        for job in jobs:
            self.router.check_request(job.request)
        await self.store.create_all(jobs, limits, max_queued)
        self.gone_chats.discard((jobs[0].destination.platform, jobs[0].destination.channel_id))  # as `submit`
        for job in jobs:
            self._enqueue(job)
        await self._queued_in_store()
        position, eta = await self._placement.place(jobs[0].id)
        paused = self.is_paused(jobs[0].queue_key)
        if self.owns_status(jobs[0]):
            # The first job's status message is the command's answer: the list of what the prompt became.
            self.notifier.publish(jobs[0], presenter.expanded(jobs, position, eta, paused))
        async with self._work:
            self._work.notify_all()
        self._tell_if_waiting(jobs)
        return Ticket(job=jobs[0], position=position, eta_seconds=eta, paused=paused)

    def _tell_if_waiting(self, jobs: list[Job]) -> None:
        """A job no backend will take for now (each that can run it is down or drained) says why at once."""
        for job in jobs:
            reason = self.waiting_reason(job)
            if reason is not None:
                self.notifier.publish(job, presenter.waiting_for_backend(job, reason))

    async def _queued_in_store(self) -> None:
        """The jobs just stored are in the queue the views read (here at once: `_enqueue` put them there;
        bot/shared_views.py reads the shared queue again)."""
