"""Chats the bot was removed from, known to every process sharing the queue (PostgreSQL).

A process that hears of a removal (a my_chat_member update, a 403 on a send: bot/chats.py) stores the chat
(QueueReader.record_gone); every process's next read of the queue carries the stored gone chats. After each read
a process follows them (its `gone_chats`: deliveries there are given up, refunded) and cancels the jobs there it
sees: queued ones at once (refunded), running ones where they run — so a job queued there after the first
process's last read is cancelled too, by whichever process reads first. A claim of a job there ends it as
cancelled, after asking the store (the chat may have come back since the last read). A command from the chat,
or Telegram telling the bot it was added back, removes the stored chat first: its new jobs run as on one process.
A private job's result goes to its user's private chat: it goes on (bot/privacy.py).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from typing import Any

from bot.errors import NotFound
from bot.jobs import Ticket
from bot.models import Job, JobState
from bot.ports import QuotaLimits
from bot.privacy import hides
from bot.queue_store import QueueReader
from bot.shared_views import SharedViews

log = logging.getLogger(__name__)


class SharedChats(SharedViews):
    """Gone chats stored for every process (bot/shared_queue.py SharedEngine mixes it in)."""

    def _init_views(self, queue: QueueReader) -> None:
        super()._init_views(queue)
        self._gone_read: frozenset[tuple[str, str]] = frozenset()  # as the last read of the queue had them
        self._gone_asked: set[str] = set()  # jobs there this process cancelled (or asked to)
        self._recording: set[asyncio.Task[None]] = set()
        self._sweeping: asyncio.Task[None] | None = None

    async def start(self) -> None:
        await super().start()
        self._follow_gone()  # the first read (at start) tells no one

    async def stop(self) -> None:
        for task in [*self._recording, *([self._sweeping] if self._sweeping is not None else [])]:
            task.cancel()
        await super().stop()

    # ---- told by the platform (bot/chats.py) ---------------------------------------------------------

    def mark_gone(self, platform: str, channel_id: str) -> bool:
        if not super().mark_gone(platform, channel_id):
            return False
        self._record(self.replica.reader.record_gone(platform, channel_id, True))
        return True

    def mark_back(self, platform: str, channel_id: str) -> None:
        super().mark_back(platform, channel_id)
        self._record(self.replica.reader.record_gone(platform, channel_id, False))

    def _record(self, write: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(write, name="record-gone-chat")
        self._recording.add(task)
        task.add_done_callback(self._recorded)

    def _recorded(self, task: asyncio.Task[None]) -> None:
        self._recording.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("storing a gone chat failed: %r", task.exception())

    # ---- a command from a chat stored as gone: the bot is back there -----------------------------------

    async def submit(self, job: Job, limits: QuotaLimits | None, max_queued: int | None = None) -> Ticket:
        """The chat's stored mark goes before the job is stored (else a process reading the queue meanwhile
        would cancel the job)."""
        await self._back((job.destination.platform, job.destination.channel_id))
        return await super().submit(job, limits, max_queued)

    async def submit_all(self, jobs: list[Job], limits: QuotaLimits | None, max_queued: int | None = None) -> Ticket:
        await self._back((jobs[0].destination.platform, jobs[0].destination.channel_id))
        return await super().submit_all(jobs, limits, max_queued)

    async def _back(self, chat: tuple[str, str]) -> None:
        if self._recording:  # a mark still on its way to the store must not land after this
            await asyncio.wait(list(self._recording))
        if chat in self.gone_chats or chat in self._gone_read:
            await self.replica.reader.record_gone(*chat, False)
            self.gone_chats.discard(chat)

    # ---- after each read of the queue ----------------------------------------------------------------

    def _queue_moved(self) -> None:
        super()._queue_moved()
        self._follow_gone()

    def _follow_gone(self) -> None:
        gone = self.replica.read.gone
        self.gone_chats -= self._gone_read - gone  # back (stored by another process)
        self.gone_chats |= gone
        self._gone_read = gone
        if gone and (self._sweeping is None or self._sweeping.done()):
            self._sweeping = asyncio.get_running_loop().create_task(self._cancel_gone(), name="cancel-gone-chats")

    async def _cancel_gone(self) -> None:
        """Cancel the jobs this process sees in gone chats (any process may: each job is ended once)."""
        self._gone_asked &= {*self.replica.queued, *self.replica.running}
        doomed = [
            job
            for job in [*self.replica.queued.values(), *(one.job for one in self.replica.running.values())]
            if (job.destination.platform, job.destination.channel_id) in self._gone_read
            and not hides(job)
            and job.id not in self._gone_asked
        ]
        for job in doomed:
            self._gone_asked.add(job.id)
            try:
                await self.cancel(job.id)
            except NotFound:
                continue  # ended meanwhile (another process cancelled it)
            except Exception:
                log.exception("job %s: cancelling it (its chat is gone) failed", job.id)
                self._gone_asked.discard(job.id)
        if doomed:
            log.info("cancelled %d job(s) in chats the bot was removed from", len(doomed))

    # ---- a claim of a job there ------------------------------------------------------------------------

    async def gone_here(self, job: Job) -> bool:
        """Whether a job just claimed is for a chat the bot was removed from (the store says; not a private one)."""
        chat = (job.destination.platform, job.destination.channel_id)
        if chat not in self.gone_chats or hides(job):
            return False
        if await self.replica.reader.is_gone(*chat):
            return True
        self.gone_chats.discard(chat)  # back since the last read
        return False

    async def end_gone(self, job: Job) -> None:
        """A claimed job whose chat is gone: it ends cancelled (refunded) here, as its cancel would end it."""
        log.info("job %s: its chat is gone; cancelled", job.id)
        job.state = JobState.CANCELLED
        await self.complete(job, [], None)
