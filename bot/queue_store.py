"""The storage side of a queue several bot processes share (bot/shared_queue.py): claims with leases, and the
signals that wake them; drains kept by name (both stores) and the board of every process's backends
(bot/shared_backends.py). storage/postgres/claims.py, listen.py and backend_board.py implement it, and
storage/drains.py the drains on SQLite; bot/ never imports them."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from bot.jobs import BackendState
from bot.models import Job

HELD, CANCEL, LOST = "held", "cancel", "lost"  # what renewing a lease found (storage's Lease values)
STATUS_OWNER = "status_owner"  # in a job's messages: the process that edits its status while it waits


class JobClaims(Protocol):
    """Jobs taken from a shared store, each leased to one process at a time."""

    async def claim(
        self,
        backends: Sequence[str],
        owner: str,
        lease_seconds: float,
        *,
        presets: Collection[str] | None = None,
        loaded_checkpoint: str | None = None,
        fit_marks: Collection[str] = (),
    ) -> Job | None:
        """The next job in the fair order one of `backends` can run, running and leased to `owner`; None if none.
        A job given back with all of `fit_marks` (the backends as they are now) is not offered."""
        ...

    async def renew(self, job_id: str, owner: str, lease_seconds: float) -> str:
        """Extend the lease: HELD, CANCEL (held, and a cancel was asked for) or LOST."""
        ...

    async def release(self, job_id: str, owner: str) -> bool:
        """Drop the lease of a job whose final state is stored."""
        ...

    async def requeue(self, job_id: str, owner: str, attempts: int | None = None, unfit: str | None = None) -> bool:
        """Give a held job back unrun, where it stood (attempts: the count to keep, if given; unfit: the mark of
        the backend that cannot run it, which is then not offered it again)."""
        ...

    async def request_cancel(self, job_id: str) -> None:
        """Ask whichever process runs the job to stop it."""
        ...

    async def cancel_queued(self, job_id: str) -> Job | None:
        """Take a queued job out of the queue as cancelled; None when it is not queued."""
        ...

    async def strand(self, stranded: Sequence[tuple[str, Sequence[str], str]]) -> list[Job]:
        """End as failed (refunded) each (job id, marks, error) still queued that was given back with all of marks;
        returns those ended by this call (each job is ended once, by whichever process comes first)."""
        ...

    async def claim_delivery(self, job_id: str, owner: str, lease_seconds: float) -> bool:
        """The right to send a finished job's result for a while; False if delivered or another process has it."""
        ...

    async def release_delivery(self, job_id: str, owner: str) -> None:
        """Give the right to send back (the send failed)."""
        ...

    async def notify_work(self) -> None:
        """Wake every process's claimers."""
        ...

    async def notify_finished(self, job_id: str) -> None:
        """Wake the processes that can deliver a job this one finished but cannot send."""
        ...

    async def reap(self) -> list[str]:
        """Queue again the jobs whose lease lapsed, unless their attempts are used up (see take_exhausted)."""
        ...

    async def take_exhausted(self, owner: str, lease_seconds: float) -> list[Job]:
        """Jobs whose runner died at their last attempt, leased to `owner`, which ends them as failed."""
        ...


class WorkSignals(Protocol):
    """Pushed by the store to every process: new work, and cancels by job id."""

    async def wait_for_work(self, seconds: float) -> bool:
        """True when jobs were queued (or signals may have been missed) before the timeout."""
        ...

    async def wait_for_finished(self) -> None:
        """Return once a job finished in a process that could not deliver it."""
        ...

    async def next_cancel(self) -> str:
        """The id of the next job someone asked to cancel."""
        ...

    async def wait_for_change(self, seconds: float) -> bool:
        """True when the queue changed (queued, claimed, finished, cancelled, given back; or signals may have
        been missed) before the timeout."""
        ...


class DrainRecords(Protocol):
    """Backends an admin drained, by name, kept across restarts (both stores)."""

    async def drained_backends(self) -> set[str]:
        """The lower-case names of the drained backends."""
        ...

    async def record_drain(self, name: str, drained: bool) -> None:
        """Store (or clear) a drain; on a shared store every process is told."""
        ...


class BackendBoard(DrainRecords, Protocol):
    """Every process's backends as each last published them, on a store several processes share."""

    async def open(self, owner: str) -> None:
        """Listen for other processes' changes; the connection names this process (claims' "gone" test)."""
        ...

    async def close(self) -> None:
        """Stop listening."""
        ...

    async def publish(self, owner: str, states: Sequence[BackendState], announce: bool) -> None:
        """Replace this process's rows (and refresh their heartbeat); `announce` tells the other processes."""
        ...

    async def withdraw(self, owner: str) -> None:
        """Remove this process's rows (it stops)."""
        ...

    async def read(self, stale_seconds: float) -> list[BackendState]:
        """Every live process's backends (process set); rows of gone or stale processes are removed first."""
        ...

    async def wait_for_change(self, seconds: float) -> bool:
        """True when a process published, a drain changed, or changes may have been missed; False at timeout."""
        ...


# ---- the read side: every process's view of the shared queue (bot/shared_views.py) ---------------------


@dataclass(frozen=True)
class Waiting:
    """A queued job as the fair order sees it: passed over so often, first at (the store's clock, seconds)."""

    job: Job
    passed_over: int = 0
    first_passed_at: float | None = None


@dataclass(frozen=True)
class Running:
    """A job on a backend now, and the process (host:pid:random) whose lease it holds."""

    job: Job
    owner: str | None


@dataclass(frozen=True)
class QueueRead:
    """The shared queue at one moment: queued jobs in the fair order (paused servers' apart), running jobs."""

    ordered: list[Waiting] = field(default_factory=list)  # the order repeated fair picks take them
    held: list[Job] = field(default_factory=list)  # queued on a paused server
    running: list[Running] = field(default_factory=list)
    paused: frozenset[str] = frozenset()  # queue keys of the paused servers
    clock: float = 0.0  # the store's clock when read (epoch seconds), on which pass-overs are measured
    live: frozenset[str] | None = None  # the processes (owner ids) connected to the store; None: not known
    gone: frozenset[tuple[str, str]] = frozenset()  # (platform, channel) of the chats the bot was removed from


@dataclass(frozen=True)
class StatusPost:
    """A job's message ids as stored, and whether the process that posts its status (STATUS_OWNER) is connected."""

    messages: dict[str, str]
    owner_live: bool


class QueueReader(Protocol):
    """Reads the whole shared queue in one consistent snapshot (storage/postgres/queue_view.py)."""

    async def read_queue(self) -> QueueRead:
        """Queued jobs in the fair order every claim follows, running jobs with their owners, paused servers."""
        ...

    async def adopt_status(self, job_id: str, gone: str, owner: str) -> bool:
        """Make `owner` the process that shows a queued job's status (STATUS_OWNER in its messages), if the one
        recorded is `gone` and its process is no longer connected; False if not (another process took it)."""
        ...

    async def status_post(self, job_id: str) -> StatusPost | None:
        """The job's message ids as stored now, and whether its STATUS_OWNER's process is connected; None if no
        such job."""
        ...

    async def record_gone(self, platform: str, channel_id: str, gone: bool) -> None:
        """Store that the bot was removed from a chat (gone) or is back there; every process reads the queue again."""
        ...

    async def is_gone(self, platform: str, channel_id: str) -> bool:
        """Whether the chat is stored as one the bot was removed from."""
        ...
