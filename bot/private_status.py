"""A private job's status in its owner's private chat: the queue position and the progress (with its previews)
that the shared channel does not see, in one message that the result then replaces or follows.

The notifier runs it as a second stream of the job (same pacing, same handover between processes); the adapter
remembers the message in the job's messages, so a restart edits it rather than posting another. A private chat
that refuses the bot is remembered there too: it costs one request, and the result is held as before.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Protocol, runtime_checkable

from bot.i18n import t
from bot.models import Job
from bot.presenter import short_prompt
from bot.replies import Reply

DM_STREAM = ":dm"  # the notifier's key suffix for a job's private-chat status stream
DM_CLOSED = "closed"  # the recorded DM status of a job whose owner's private chat refused the bot
DM_REFUSED = "refused"  # its first post was refused for another reason: not tried again (in this process)


@runtime_checkable
class DirectStatus(Protocol):
    """How an Outbound shows private jobs' status in their owners' private chats (its `direct` attribute)."""

    def interval(self, job: Job) -> float:
        """The least time between two status edits in the owner's private chat."""
        ...

    async def update(self, job: Job, reply: Reply) -> bool:
        """Post (the first time) or edit the job's status message in the owner's private chat. False when it was
        skipped for now (a busy chat): the notifier shows it later. A chat that refuses the bot is recorded and
        never tried again for this job (the result is then held without another try)."""
        ...

    async def ended(self, job: Job, reply: Reply) -> None:
        """The job ended without a private result (failed, cancelled): its private-chat status says so."""
        ...


def direct_status(outbound: object) -> DirectStatus | None:
    """The outbound's way to show a private job's status in its owner's private chat, if it has one."""
    direct = getattr(outbound, "direct", None)
    return direct if isinstance(direct, DirectStatus) else None


class DirectView:
    """The outbound as the notifier's private-chat stream sees it: its status is the private-chat one."""

    owns_status = False  # cancelling waits for a post in flight, so its message id is recorded before the result

    def __init__(self, outbound: DirectStatus, platform: str) -> None:
        self.outbound = outbound
        self.platform = platform

    def min_interval(self, job: Job) -> float:
        return self.outbound.interval(job)

    async def update_status(self, job: Job, reply: Reply) -> bool:
        return await self.outbound.update(job, for_owner(job, reply))

    async def deliver(self, job: Job, reply: Reply) -> bool:  # the Outbound port; results go through deliver_direct
        raise NotImplementedError


def for_owner(job: Job, reply: Reply) -> Reply:
    """The status as its owner may see it: with the prompt the channel's status leaves out."""
    hidden = t(job.destination.locale, "private.prompt")
    if hidden not in reply.text:
        return reply
    return replace(reply, text=reply.text.replace(hidden, short_prompt(job.request.user_prompt), 1))
