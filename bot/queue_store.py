"""The storage side of a queue several bot processes share (bot/shared_queue.py): claims with leases, and the
signals that wake them. storage/postgres/claims.py and listen.py implement it; bot/ never imports them."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import Protocol

from bot.models import Job

HELD, CANCEL, LOST = "held", "cancel", "lost"  # what renewing a lease found (storage's Lease values)


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
    ) -> Job | None:
        """The next job in the fair order one of `backends` can run, running and leased to `owner`; None if none."""
        ...

    async def renew(self, job_id: str, owner: str, lease_seconds: float) -> str:
        """Extend the lease: HELD, CANCEL (held, and a cancel was asked for) or LOST."""
        ...

    async def release(self, job_id: str, owner: str) -> bool:
        """Drop the lease of a job whose final state is stored."""
        ...

    async def requeue(self, job_id: str, owner: str, attempts: int | None = None) -> bool:
        """Give a held job back unrun, where it stood (attempts: the count to keep, if given)."""
        ...

    async def request_cancel(self, job_id: str) -> None:
        """Ask whichever process runs the job to stop it."""
        ...

    async def cancel_queued(self, job_id: str) -> Job | None:
        """Take a queued job out of the queue as cancelled; None when it is not queued."""
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
        """Queue again the jobs whose lease lapsed."""
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
