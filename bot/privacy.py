"""Private results (`--private`, the /settings `private` flag): the result goes to the user's private chat, the
channel where the command was given only learns that it is done.

A job is private by its `Destination.private`; it *hides* from its channel when that channel is not already the
user's own private chat (there `--private` changes nothing).
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from bot.i18n import t
from bot.models import Destination, Job
from bot.replies import Reply, Tone


def in_private_chat(destination: Destination) -> bool:
    """The chat is the user's own: a Telegram private chat (its id is the user's id), a Discord DM, the console
    (one person's terminal) and any platform without shared channels."""
    if destination.platform == "telegram":
        return destination.channel_id == destination.user_id
    if destination.platform == "discord":
        return destination.server_id.startswith("dm:")
    return True


def hides(job: Job) -> bool:
    """A private job made in a shared channel: its prompt, previews and images stay out of that channel."""
    return job.destination.private and not in_private_chat(job.destination)


def owner_here(job: Job, here: Destination) -> bool:
    """The invoker is the job's owner, in their own private chat."""
    return (
        here.user_id == job.destination.user_id and here.platform == job.destination.platform and in_private_chat(here)
    )


class DirectClosed(Exception):
    """The user's private chat refuses the bot (Telegram: never started or blocked; Discord: DMs closed).

    `instructions` tells the user, in the job's language, how to open it and get the result.
    """

    def __init__(self, instructions: str) -> None:
        super().__init__(instructions)
        self.instructions = instructions


@runtime_checkable
class DirectOutbound(Protocol):
    """An Outbound that can write to a job owner's private chat (Telegram chat id = user id; Discord DM)."""

    async def deliver_direct(self, job: Job, reply: Reply, *, again: bool = False) -> bool:
        """Post `reply` (the result, with its buttons) in the owner's private chat. True once it is there; False
        when it may work later. What was posted is recorded, so a retry does not post it twice, unless `again`
        (/show asks for it once more). Raises DirectClosed when the user's chat refuses the bot, and
        `bot.ports.Undeliverable` when trying again cannot help for another reason."""
        ...


def sent_notice(job: Job) -> Reply:
    """What the channel sees of a private result: that it is done and where it went, nothing of its content."""
    lang = job.destination.locale
    return Reply(
        text=t(lang, "private.sent", job=job.id, user=job.destination.user_name or job.destination.user_id),
        tone=Tone.SUCCESS,
        job_id=job.id,
    )
