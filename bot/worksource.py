"""What a worker (bot/worker.py) depends on instead of the whole engine: the queue it takes jobs from and hands
outcomes back to (`WorkSource`, the engine's dispatch side in bot/dispatch.py), and where it publishes statuses.

Its other collaborators are passed to it explicitly: the job store, the image files, the router, the settings.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Protocol

from bot.models import Job, StoredImage
from bot.pool import PoolPolicy
from bot.replies import Reply

if TYPE_CHECKING:
    from bot.worker import Worker


class WorkSource(Protocol):
    """What a worker asks of the queue (the engine's dispatch side, bot/dispatch.py)."""

    store_counts_attempts: bool  # True when taking a job counts its attempt (claims from a shared store)

    async def next_job(self, worker: Worker) -> Job:
        """Wait for the next job this worker's backend may run, in fair order with affinity, and take it."""
        ...

    async def complete(self, job: Job, images: Sequence[StoredImage], actual_cost: float | None) -> None:
        """Store the job's final outcome (settling its quota), then deliver it."""
        ...

    async def requeue(self, job: Job) -> None:
        """Put a taken job back in the queue, where it stood in its user's line."""
        ...

    def cancel_requested(self, job_id: str) -> bool:
        """Whether a user cancelled this running job."""
        ...

    def stop_requested(self, job_id: str) -> bool:
        """Whether a shutdown interrupted this running job (it is requeued, not reported)."""
        ...

    def note_timing(self, preset: str, seconds_per_step: float) -> None:
        """A measured speed of this preset, for queue estimates."""
        ...

    def take_move_note(self, job_id: str) -> str:
        """Why the job left its previous backend ("" if it did not), to show with its progress; read once."""
        ...

    def note_move(self, job_id: str, note: str) -> None:
        """Why the job is being moved or retried, for the worker that takes it next."""
        ...

    def released(self) -> None:
        """This worker is done with a job or its delivery."""
        ...

    async def wake_workers(self) -> None:
        """Have waiting workers look at the queue again (this backend is back)."""
        ...

    async def fail_stranded(self) -> None:
        """Fail the queued jobs no backend can run any more (what a backend has changed)."""
        ...

    def pool_policy(self) -> PoolPolicy:
        """Health check delays and the errors in a row that take a backend out of rotation."""
        ...

    def why_waiting(self, lang: str | None) -> str:
        """Why jobs wait when no backend is available."""
        ...


class StatusSink(Protocol):
    """Where a worker publishes a job's statuses (the throttling notifier, bot/notify.py)."""

    def publish(self, job: Job, reply: Reply) -> None:
        """Record the job's latest status; never waits on a platform."""
        ...
