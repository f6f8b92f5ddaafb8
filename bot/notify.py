"""Progress notifier: keeps the latest status per job and emits it no faster than the platform allows.

Workers call `publish`, which never waits; one small task per job does the (possibly slow,
possibly rate-limited) edit, coalescing everything that arrived meanwhile into the newest state.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace

from bot.lifecycle import stop_tasks
from bot.models import Job
from bot.ports import Outbound
from bot.privacy import hides
from bot.private_status import DM_STREAM, DirectView, direct_status
from bot.replies import Reply

log = logging.getLogger(__name__)


@dataclass
class _Slot:
    job: Job
    outbound: Outbound
    latest: Reply | None = None
    first: Reply | None = None  # an outbound that owns its status posts this one first, however fast others follow
    wakeup: asyncio.Event = field(default_factory=asyncio.Event)
    emitting: asyncio.Lock = field(default_factory=asyncio.Lock)
    task: asyncio.Task[None] | None = None
    last_emit: float = float("-inf")
    ready: bool = False  # `before_first` was awaited


class StatusNotifier:
    """Throttled, coalesced status edits, one stream per job."""

    def __init__(self, outbounds: dict[str, Outbound], clock: Callable[[], float] = time.monotonic) -> None:
        self._outbounds = outbounds
        self._clock = clock
        self._slots: dict[str, _Slot] = {}
        self.emitted = 0
        self.observers: list[Callable[[Job, Reply], None]] = []  # e.g. the web gallery's live previews
        # Awaited once per stream before its first emit: another process's post of the job's status message may
        # be in flight (bot/shared_views.py waits for its id, so this stream edits that message).
        self.before_first: Callable[[Job], Awaitable[None]] | None = None

    def publish(self, job: Job, reply: Reply) -> None:
        """Record the newest status for a job; it is shown as soon as the platform's interval allows."""
        for observer in self.observers:
            observer(job, reply)
        outbound = self._outbounds.get(job.destination.platform)
        if outbound is None:
            return
        if hides(job):
            if (direct := direct_status(outbound)) is not None:  # its owner follows it there, previews and all
                self._publish(job.id + DM_STREAM, job, DirectView(direct, outbound.platform), reply)
            if reply.images:  # a private job's previews would show the channel its image
                reply = replace(reply, images=[])
        self._publish(job.id, job, outbound, reply)

    def _publish(self, key: str, job: Job, outbound: Outbound, reply: Reply) -> None:
        slot = self._slots.get(key)
        if slot is None:
            slot = self._slots[key] = _Slot(job=job, outbound=outbound)
            if getattr(outbound, "owns_status", False):
                slot.first = reply  # the command's acknowledgement (the queue position, a wildcard's list)
            slot.task = asyncio.get_running_loop().create_task(self._run(slot), name=f"status-{key}")
        slot.job = job
        if reply is not slot.first:
            slot.latest = reply
        slot.wakeup.set()

    def streams(self) -> list[str]:
        """The jobs whose status this notifier shows (until `finish`)."""
        return [key for key in self._slots if not key.endswith(DM_STREAM)]

    async def finish(self, job_id: str) -> None:
        """Stop the job's status stream: drop what is pending and wait for an edit in flight.

        An outbound that owns its status messages (`owns_status`) is cancelled at once: it guarantees that a
        cancelled update either sent nothing (it was still waiting for room) or recorded what it sent.
        """
        await self._finish(job_id + DM_STREAM)
        await self._finish(job_id)

    async def _finish(self, key: str) -> None:
        slot = self._slots.pop(key, None)
        if slot is None or slot.task is None:
            return
        slot.latest = None
        if getattr(slot.outbound, "owns_status", False):
            await stop_tasks([slot.task])
            return
        async with slot.emitting:
            slot.task.cancel()
        await stop_tasks([slot.task])

    async def aclose(self) -> None:
        for job_id in list(self._slots):
            await self.finish(job_id)

    async def _before_first(self, job: Job) -> None:
        if self.before_first is None:
            return
        try:
            await self.before_first(job)
        except Exception:  # the status is shown anyway
            log.exception("job %s: waiting for its status message failed", job.id)

    async def _run(self, slot: _Slot) -> None:
        while True:
            await slot.wakeup.wait()
            if not slot.ready:
                slot.ready = True
                await self._before_first(slot.job)
            wait = slot.last_emit + slot.outbound.min_interval(slot.job) - self._clock()
            if wait > 0:
                await asyncio.sleep(wait)
            slot.wakeup.clear()
            async with slot.emitting:
                reply: Reply | None
                if slot.first is not None:
                    reply, slot.first = slot.first, None
                    if slot.latest is not None:
                        slot.wakeup.set()  # what came meanwhile follows
                else:
                    reply, slot.latest = slot.latest, None
                if reply is None:
                    continue
                slot.last_emit = self._clock()
                try:
                    shown = await slot.outbound.update_status(slot.job, reply)
                except Exception:
                    log.exception("status update failed for job %s", slot.job.id)
                    continue
                if shown is False:  # skipped for now: unless something newer came, show this one later
                    slot.latest = slot.latest or reply
                    slot.wakeup.set()
                else:
                    self.emitted += 1
