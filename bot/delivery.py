"""Delivery: show each finished job once, retry what the platform could not take, give up (and refund) what
can never be shown. Mixed into the Engine, which owns the state used here."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

from bot import presenter
from bot.logs import current_job
from bot.models import DeliveryState, Job, JobState, StoredImage
from bot.notify import StatusNotifier
from bot.ports import ChatRecords, ImageFiles, JobStore, Outbound, Undeliverable
from bot.privacy import DirectClosed, DirectOutbound, hides, sent_notice
from bot.private_status import direct_status
from bot.replies import Reply, fetched
from bot.routing import Router

log = logging.getLogger(__name__)

DELIVERY_RETRY_SECONDS = 10.0  # the sweep's interval, and the first retry's delay (×4 each time, at most 1 h)
MAX_DELIVERY_ATTEMPTS = 6


class Delivery:
    """The delivery half of the Engine."""

    store: JobStore
    files: ImageFiles  # results kept in a bucket are read through it before an adapter sends them
    router: Router
    outbounds: dict[str, Outbound]
    notifier: StatusNotifier
    draining: bool
    gone_chats: set[tuple[str, str]]
    worker_changed: asyncio.Event
    _delivering: set[str]
    _delivery_failures: dict[str, int]
    _next_delivery: dict[str, float]
    _finished: dict[str, asyncio.Event]

    def finished_event(self, job_id: str) -> asyncio.Event:
        """Set once the job's final outcome has been delivered (used by the console and tests)."""
        return self._finished.setdefault(job_id, asyncio.Event())

    async def deliver(self, job: Job, images: Sequence[StoredImage] | None = None) -> bool:
        """Show the final outcome once. The delivered mark is written right after the platform confirms."""
        if job.id in self._delivering:
            return False
        outbound = self.outbounds.get(job.destination.platform)
        if outbound is None:
            return False
        self._delivering.add(job.id)
        marker = current_job.set(job.id)
        try:
            await self.notifier.finish(job.id)
            if images is None:
                images = await self.store.images(job.id)
            outcome: DeliveryState | None
            try:
                if hides(job) and job.state is JobState.SUCCEEDED and images:
                    outcome = await self._deliver_private(outbound, job, images)
                else:
                    if self._channel_gone(job):
                        raise Undeliverable(f"the bot was removed from chat {job.destination.channel_id}")
                    reply = await fetched(presenter.final(job, images, self.router.offered(job)), self.files)
                    outcome = DeliveryState.DELIVERED if await outbound.deliver(job, reply) else None
                    if outcome is not None and hides(job) and (direct := direct_status(outbound)) is not None:
                        await direct.ended(job, reply)  # its private-chat status: not left "running"
            except Undeliverable as exc:
                await self.give_up(job, str(exc))
                return False
            except Exception:
                log.exception("delivery of job %s failed; will retry", job.id)
                outcome = None
            if outcome is not None:
                job.delivery = outcome
                await self.store.set_delivery(job.id, outcome)
                self._delivery_failures.pop(job.id, None)
                self._next_delivery.pop(job.id, None)
                self.finished_event(job.id).set()
            else:
                await self._delivery_failed(job)
            return outcome is DeliveryState.DELIVERED
        finally:
            self._delivering.discard(job.id)
            current_job.reset(marker)
            self.worker_changed.set()  # drain() waits for deliveries under way too

    def _channel_gone(self, job: Job) -> bool:
        return (job.destination.platform, job.destination.channel_id) in self.gone_chats

    async def _deliver_private(
        self, outbound: Outbound, job: Job, images: Sequence[StoredImage]
    ) -> DeliveryState | None:
        """The result to the owner's private chat, then a word in the channel (which may be gone: the DM is not).

        A private chat that refuses the bot holds the result: it is kept (and charged: it was made), the channel
        is told how to get it, and nothing is retried until the user asks with /show.
        """
        if not isinstance(outbound, DirectOutbound):
            raise Undeliverable(f"{job.destination.platform} has no private chats")
        try:
            final = await fetched(presenter.final(job, images, self.router.offered(job)), self.files)
            sent = await outbound.deliver_direct(job, final)
        except DirectClosed as closed:
            log.info("job %s: the user's private chat refuses the bot; result held for /show", job.id)
            await self._tell_channel(outbound, job, Reply(text=closed.instructions, job_id=job.id))
            return DeliveryState.HELD
        if not sent:
            return None
        await self._tell_channel(outbound, job, sent_notice(job))
        return DeliveryState.DELIVERED

    async def _tell_channel(self, outbound: Outbound, job: Job, notice: Reply) -> None:
        """The channel's status message becomes the notice (best effort: the result itself is safe)."""
        if self._channel_gone(job):
            return
        try:
            await outbound.deliver(job, notice)
        except Exception as exc:  # Undeliverable included: the user has (or can fetch) the result anyway
            log.warning("job %s: could not tell the channel about its private result: %s", job.id, exc)

    async def send_privately(self, job: Job) -> bool:
        """/show of a private result outside its owner's private chat: post it there once more.

        Raises DirectClosed when that chat refuses the bot. A held result counts as delivered once it is there.
        """
        outbound = self.outbounds.get(job.destination.platform)
        if not isinstance(outbound, DirectOutbound):
            return False
        images = await self.store.images(job.id)
        try:
            final = await fetched(presenter.final(job, images, self.router.offered(job)), self.files)
            sent = await outbound.deliver_direct(job, final, again=True)
        except Undeliverable as exc:
            log.warning("job %s: /show could not post it privately: %s", job.id, exc)
            return False
        if sent and job.delivery is DeliveryState.HELD:
            await self.mark_shown(job)
        return sent

    async def mark_shown(self, job: Job) -> None:
        """A held private result reached its owner (/show): it counts as delivered."""
        job.delivery = DeliveryState.DELIVERED
        await self.store.set_delivery(job.id, DeliveryState.DELIVERED)

    async def _delivery_failed(self, job: Job) -> None:
        """Back off (×4 each time); after MAX_DELIVERY_ATTEMPTS stop trying and say so in the log."""
        failures = self._delivery_failures[job.id] = self._delivery_failures.get(job.id, 0) + 1
        if failures >= MAX_DELIVERY_ATTEMPTS:
            await self.give_up(job, f"{failures} attempts failed")
            return
        delay = min(DELIVERY_RETRY_SECONDS * 4**failures, 3600.0)
        self._next_delivery[job.id] = asyncio.get_running_loop().time() + delay

    async def give_up(self, job: Job, why: str) -> None:
        """The result can never be shown: mark it so and refund it (a result nobody received costs nothing)."""
        log.warning("job %s: undeliverable (%s); refunded", job.id, why)
        job.delivery = DeliveryState.UNDELIVERABLE
        await self.store.set_delivery(job.id, DeliveryState.UNDELIVERABLE)
        if isinstance(self.store, ChatRecords):
            await self.store.refund(job.id)
        self._delivery_failures.pop(job.id, None)
        self._next_delivery.pop(job.id, None)
        self.finished_event(job.id).set()

    async def deliver_pending(self) -> None:
        """The sweep: each job is read again just before its turn (another path may have delivered it meanwhile)."""
        now = asyncio.get_running_loop().time()
        for listed in await self.store.undelivered():
            if self.draining:  # shutting down: what is still pending is delivered by the next start
                return
            if listed.id in self._delivering or self._next_delivery.get(listed.id, 0.0) > now:
                continue
            job = await self.store.get(listed.id)
            if job is not None and job.delivery is DeliveryState.PENDING and job.destination.platform in self.outbounds:
                await self.deliver(job)
