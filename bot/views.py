"""The read side of the Jobs port (bot/jobs.py), and the few admin and chat changes beside it: where jobs
stand, which backends do what, pause and resume, chats that went away or moved. Mixed into the Engine."""

from __future__ import annotations

from collections.abc import Callable, Collection
from datetime import datetime
from typing import TYPE_CHECKING

from bot.dispatch import Dispatch
from bot.fit import Need
from bot.jobs import BackendState, PauseRecords
from bot.models import Job, JobKind, JobState, utcnow
from bot.placement import NOWHERE, FairOrder, Lane, Place, forecast, queue_order
from bot.ports import ChatRecords
from bot.presets import Preset
from bot.replies import Reply
from bot.scheduler import QueuedJob

if TYPE_CHECKING:
    from bot.worker import Worker


class QueueViews(Dispatch):
    """Snapshots of the queue and the backends, pause and resume, chat changes."""

    workers: list[Worker]
    stopping: bool
    pauses: PauseRecords | None

    def is_draining(self) -> bool:
        return self.draining

    def is_stopped(self) -> bool:
        return self.stopping

    def check_runs(
        self, preset: Preset, kind: JobKind, count: int, prompt: str, variation: bool = False, references: int = 0
    ) -> None:
        self.router.check(preset, kind, count, prompt, variation, references)

    def can_run(self, need: Need) -> bool:
        return self.router.can_run(need)

    def queued_count(self, platform: str, user_id: str) -> int:
        return self.scheduler.user_count(f"{platform}:{user_id}")  # kept as a count: every /imagine asks

    def queue_length(self) -> int:
        return len(self.scheduler)

    def is_queued(self, job_id: str) -> bool:
        return job_id in self.scheduler

    def active_job(self, job_id: str) -> Job | None:
        return self._jobs.get(job_id)

    def active_jobs_in(self, platform: str, channel_id: str) -> list[Job]:
        return [
            job
            for job in self._jobs.values()
            if job.destination.platform == platform and job.destination.channel_id == channel_id
        ]

    def running_jobs(self) -> list[Job]:
        return [job for job in self._jobs.values() if job.state is JobState.RUNNING]

    def queued_jobs(self, server: str | None = None) -> list[tuple[int, Job]]:
        queued = [job for job in self._jobs.values() if job.id in self.scheduler]
        return queue_order(self.places([job.id for job in queued]), queued, server)

    def eta(self, job_id: str) -> float | None:
        return self.place(job_id)[1]

    def place(self, job_id: str) -> Place:
        return self.places([job_id]).get(job_id, NOWHERE)

    def places(self, job_ids: Collection[str]) -> dict[str, Place]:
        """Positions and ETAs of the given jobs (queued, or running: no position) from one forecast."""
        jobs = {job_id: job for job_id in job_ids if (job := self._live_job(job_id)) is not None}
        if not jobs:
            return {}
        places = forecast(self._fair_order(), self.lanes())
        found: dict[str, Place] = {}
        for job_id, job in jobs.items():
            place = places.place(job_id)
            if place is not None:
                found[job_id] = place
            elif job.state is JobState.RUNNING:
                found[job_id] = (None, self.estimate_seconds(job))
            else:  # on a paused server
                found[job_id] = (None, None)
        return found

    def _live_job(self, job_id: str) -> Job | None:
        """A queued or running job by id (bot/shared_views.py: from the shared queue's replica)."""
        return self._jobs.get(job_id)

    def _fair_order(self) -> FairOrder:
        """The queued jobs in fair order, for the forecast (bot/shared_views.py: the shared queue's)."""
        return self.scheduler

    def lanes(self) -> list[Lane]:
        """The backends taking jobs (all of them while none is), each with what its current job leaves to do."""
        workers = [worker for worker in self.workers if worker.healthy and not worker.drained] or list(self.workers)
        now = utcnow()
        lanes = []
        for worker in workers:
            current = worker.current
            left = self.seconds_left(current, now) if current is not None else 0.0
            loaded = current.request.checkpoint if current is not None else worker.loaded_checkpoint
            lanes.append(Lane(left, loaded, self._runs_on(worker)))
        return lanes

    def seconds_left(self, running: Job, now: datetime) -> float:
        """What a running job's estimate leaves to do at `now` (its whole estimate if it has not started)."""
        elapsed = (now - running.started_at).total_seconds() if running.started_at else 0.0
        return max(0.0, self.estimate_seconds(running) - elapsed)

    def owns_status(self, job: Job) -> bool:
        """Whether the job's platform outbound posts and edits its status message itself (bot/ports.py)."""
        return bool(getattr(self.outbounds.get(job.destination.platform), "owns_status", False))

    def _runs_on(self, worker: Worker) -> Callable[[QueuedJob], bool]:
        def runs(entry: QueuedJob) -> bool:
            job = self._live_job(entry.job_id)
            return job is None or self.router.runs(worker, job)

        return runs

    # ---- pause -------------------------------------------------------------------------------

    def is_paused(self, queue_key: str) -> bool:
        return self.scheduler.is_paused(queue_key)

    async def pause(self, queue_key: str) -> None:
        await self._record_pause(queue_key, True)  # stored first: a restart keeps it
        self.scheduler.pause(queue_key)

    async def resume(self, queue_key: str) -> None:
        await self._record_pause(queue_key, False)
        self.scheduler.resume(queue_key)
        await self.wake_workers()

    async def _record_pause(self, queue_key: str, paused: bool) -> None:
        if self.pauses is None:
            return
        platform, _, server_id = queue_key.partition(":")
        settings = await self.pauses.server(platform, server_id)
        if settings.paused != paused:
            settings = settings.copy()
            settings.paused = paused
            await self.pauses.save_server(settings)

    # ---- backends ----------------------------------------------------------------------------

    def backends(self) -> list[BackendState]:
        return [_state(worker) for worker in self.workers]

    async def set_drained(self, name: str, drained: bool) -> BackendState | None:
        worker = self.pool.named(name)
        if worker is None:
            return None
        worker.drained = drained
        if not drained:
            await self.wake_workers()
        return _state(worker)

    # ---- delivery and statuses ---------------------------------------------------------------

    async def wait_delivered(self, job_id: str) -> None:
        await self.finished_event(job_id).wait()

    def watch_statuses(self, observer: Callable[[Job, Reply], None]) -> None:
        self.notifier.observers.append(observer)

    # ---- chats -------------------------------------------------------------------------------

    def mark_gone(self, platform: str, channel_id: str) -> bool:
        if (platform, channel_id) in self.gone_chats:
            return False
        self.gone_chats.add((platform, channel_id))
        return True

    def mark_back(self, platform: str, channel_id: str) -> None:
        self.gone_chats.discard((platform, channel_id))

    async def move_chat(self, platform: str, old: str, new: str) -> list[str]:
        moved: list[str] = []
        if isinstance(self.store, ChatRecords):
            moved = await self.store.move_chat(platform, old, new)
        for job in self.active_jobs_in(platform, old):
            destination = job.destination
            server = new if destination.server_id == old else destination.server_id
            # The message it answered stays behind in the old chat: nothing to reply to in the new one.
            update = {"channel_id": new, "server_id": server, "source_message_id": None}
            job.destination = destination.model_copy(update=update)
            if job.id not in moved:
                moved.append(job.id)
        return moved


def _state(worker: Worker) -> BackendState:
    backend = worker.backend
    return BackendState(
        name=backend.name,
        kind=backend.kind,
        healthy=worker.healthy,
        detail=worker.health_detail,
        drained=worker.drained,
        current=worker.current,
        loaded=worker.loaded_checkpoint,
        completed=worker.completed,
        model_switches=worker.model_switches,
    )
