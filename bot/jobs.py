"""The Jobs port: everything commands, ops, the web pages and the platform adapters may ask of the job queue.

They see only this Protocol (or a smaller one), never the engine, the scheduler, the workers or the pool:
the engine (bot/engine.py) is today's one implementation, over one process's memory and the job store.
A store shared by several processes plugs in behind these same operations.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from bot.fit import Need
from bot.models import Job, JobKind, StoredImage
from bot.placement import Place
from bot.ports import QuotaLimits, ServerSettings
from bot.presets import Preset
from bot.replies import Reply

if TYPE_CHECKING:
    from bot.routing import BackendFit


@dataclass
class Ticket:
    """What the user is told when a job is accepted."""

    job: Job
    position: int | None
    eta_seconds: float | None
    paused: bool = False


@dataclass(frozen=True)
class BackendState:
    """One backend as /admin, /queue, the web pages and the ops endpoint show it (a snapshot, not a handle)."""

    name: str
    kind: str
    healthy: bool
    detail: str  # why it is out of rotation (English, may name hosts: for bot admins only)
    drained: bool
    current: Job | None
    loaded: str | None  # the checkpoint it has loaded, if known
    completed: int
    model_switches: int
    process: str | None = None  # on a shared queue: the process that runs it (host:pid:random), else None
    remote: bool = False  # run by another process (bot/shared_backends.py)
    fit: BackendFit | None = None  # on a shared queue: what it can run, as its process publishes it

    @property
    def label(self) -> str:
        """The name, and on a shared queue its process: two processes may each run a backend of one name."""
        return self.name if self.process is None else f"{self.name} @ {self.process}"


class Jobs(Protocol):
    """The job queue as its callers see it: submit, cancel, where jobs stand, pause, deliver."""

    async def submit(self, job: Job, limits: QuotaLimits | None, max_queued: int | None = None) -> Ticket:
        """Store the job with its quota reservation and the per-user queue cap (atomically), then queue it.

        Raises Unrunnable when no backend can run it, and the store's quota / queue-cap errors; nothing is
        stored or charged then."""
        ...

    async def submit_all(self, jobs: list[Job], limits: QuotaLimits | None, max_queued: int | None = None) -> Ticket:
        """Jobs of one command, stored and charged all or none; returns the first one's ticket."""
        ...

    def check_runs(
        self, preset: Preset, kind: JobKind, count: int, prompt: str, variation: bool = False, references: int = 0
    ) -> None:
        """Raise Unrunnable when no configured backend can run this (an edit: with this many reference images);
        before anything is stored or charged."""
        ...

    def can_run(self, need: Need) -> bool:
        """Whether some configured backend (in rotation or not) can run the need, by what it last reported."""
        ...

    async def cancel(self, job_id: str) -> Job:
        """Cancel a queued job at once (refunded), or interrupt a running one. Raises NotFound if it is over."""
        ...

    def is_draining(self) -> bool:
        """True while the process shuts down: new jobs are refused."""
        ...

    def is_stopped(self) -> bool:
        """True once the queue has stopped (the process is exiting): not healthy any more."""
        ...

    def queued_count(self, platform: str, user_id: str) -> int:
        """How many jobs this user has waiting."""
        ...

    def queue_length(self) -> int:
        """How many jobs wait in every server's queue (paused ones included)."""
        ...

    def is_queued(self, job_id: str) -> bool:
        """Whether the job waits in a queue (not running, not finished)."""
        ...

    def active_job(self, job_id: str) -> Job | None:
        """The live copy of a queued or running job; None once it is finished (read it from the store then)."""
        ...

    def active_jobs_in(self, platform: str, channel_id: str) -> list[Job]:
        """Queued and running jobs whose answers go to this channel."""
        ...

    def running_jobs(self) -> list[Job]:
        """Jobs on a backend now."""
        ...

    def queued_jobs(self, server: str | None = None) -> list[tuple[int, Job]]:
        """Queued jobs in the order backends will start them, with their 1-based position; one server's or all."""
        ...

    def place(self, job_id: str) -> Place:
        """(1-based position, seconds until likely done) of a queued job; (None, seconds) while it runs."""
        ...

    def places(self, job_ids: Collection[str]) -> dict[str, Place]:
        """Places of several jobs from one forecast of the queue (cheaper than one `place` each)."""
        ...

    def is_paused(self, queue_key: str) -> bool:
        """Whether this server's queue is paused (its jobs wait, others run)."""
        ...

    async def pause(self, queue_key: str) -> None:
        """Pause a server's queue; kept across restarts. The one place that holds "paused"."""
        ...

    async def resume(self, queue_key: str) -> None:
        """Resume a server's queue; its jobs are offered to the backends at once."""
        ...

    def backends(self) -> list[BackendState]:
        """Every configured backend, in configuration order; on a shared queue then every other live process's
        (each names its process: BackendState.process)."""
        ...

    async def set_drained(self, name: str, drained: bool) -> BackendState | None:
        """Drain (finish the running job, take no new ones) or undrain a backend by name, case-insensitive;
        kept across restarts. On a shared queue every process's backend of that name follows at once.

        None when no backend has that name."""
        ...

    async def deliver(self, job: Job, images: Sequence[StoredImage] | None = None) -> bool:
        """Show a finished job's outcome once; True when the platform took it."""
        ...

    async def send_privately(self, job: Job) -> bool:
        """Post a private job's result in its owner's private chat once more (/show elsewhere); True once there.

        Raises DirectClosed (bot/privacy.py) when that chat refuses the bot."""
        ...

    async def mark_shown(self, job: Job) -> None:
        """A held private result reached its owner (/show in their private chat): it counts as delivered."""
        ...

    async def wait_delivered(self, job_id: str) -> None:
        """Return once the job's final outcome has been delivered (or given up on)."""
        ...

    def watch_statuses(self, observer: Callable[[Job, Reply], None]) -> None:
        """Call `observer` with every status published for a job (queued, progress, previews); it must not wait."""
        ...

    def mark_gone(self, platform: str, channel_id: str) -> bool:
        """The bot can no longer write in this chat: nothing is delivered or started there. False if known."""
        ...

    def mark_back(self, platform: str, channel_id: str) -> None:
        """The bot may write in this chat again."""
        ...

    async def move_chat(self, platform: str, old: str, new: str) -> list[str]:
        """A chat got a new id: stored and live jobs follow it. Returns the ids of the jobs that moved."""
        ...


class PauseRecords(Protocol):
    """Where paused servers are kept across restarts (the accounts store)."""

    async def server(self, platform: str, server_id: str) -> ServerSettings:
        """A server's settings (defaults when it has none)."""
        ...

    async def save_server(self, settings: ServerSettings) -> None:
        """Store a server's settings."""
        ...

    async def paused_servers(self) -> list[str]:
        """Queue keys of the paused servers."""
        ...
