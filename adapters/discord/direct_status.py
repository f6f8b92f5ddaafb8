"""A private job's status message in its owner's DM: posted with the queued status, edited with the progress and
its preview (at the job's status interval; discord.py keeps to the rate limits), then edited into the result (as
the channel's status message is for a public job). See bot/private_status.py.

DMs closed to the bot (403 / 50007) are recorded on the job at the first try, so nothing more is tried for it:
the result is then held as before.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

import discord

from adapters.discord.render import Rendered, render
from bot.lifecycle import uncancelled
from bot.models import Job
from bot.private_status import DM_CLOSED, DM_REFUSED
from bot.replies import Reply

if TYPE_CHECKING:
    from adapters.discord.outbound import DiscordOutbound

log = logging.getLogger(__name__)

DM_STATUS = "discord_dm_status"  # "channel:message" of the status in the owner's DM, or "closed"
CANNOT_SEND = 50007  # "Cannot send messages to this user": DMs closed to the bot


class DirectStatusMessages:
    """The DM status messages of the private jobs this process shows."""

    def __init__(self, outbound: DiscordOutbound) -> None:
        self.outbound = outbound
        self._refs: dict[str, str] = {}

    async def recorded(self, job: Job) -> str | None:
        """The job's DM status: "channel:message", DM_CLOSED, or None (not posted; read from the store, where
        another process or the previous run may have recorded it)."""
        if job.id in self._refs:
            return self._refs[job.id]
        value = job.messages.get(DM_STATUS)
        services = self.outbound.services
        if not value and services is not None:
            stored = await services.store.get(job.id)
            value = stored.messages.get(DM_STATUS) if stored is not None else None
        if value:
            self._refs[job.id] = value
        return value or None

    async def _remember(self, job: Job, value: str) -> None:
        self._refs[job.id] = job.messages[DM_STATUS] = value
        if self.outbound.services is not None:
            await self.outbound.services.store.set_message(job.id, DM_STATUS, value)

    def interval(self, job: Job) -> float:
        return self.outbound.min_interval(job)

    async def ended(self, job: Job, reply: Reply) -> None:
        """See `bot.private_status.DirectStatus`: the text only (its preview and buttons go)."""
        try:
            await self.update(job, Reply(text=reply.text), final=True)
        except discord.HTTPException as exc:
            log.warning("DM status of job %s: %s", job.id, exc)

    async def update(self, job: Job, reply: Reply, final: bool = False) -> bool:
        """Post or edit the DM status; True unless it may work later (a fault on the way)."""
        from adapters.discord.outbound import _kwargs

        value = await self.recorded(job)
        client = self.outbound.client
        if value in (DM_CLOSED, DM_REFUSED) or client is None:
            return True
        rendered: Rendered = await asyncio.to_thread(render, reply, self.outbound.config.upload_limit_bytes)
        try:
            if value is None:
                await uncancelled(self._post(client, job, rendered))  # its id is recorded even if the job ended
            else:
                channel_id, _, message_id = value.partition(":")
                message = client.get_partial_messageable(int(channel_id)).get_partial_message(int(message_id))
                await message.edit(**_kwargs(rendered, edit=True, final=final))
        except discord.Forbidden as exc:
            if exc.code != CANNOT_SEND:  # the result will try once and say why
                log.warning("DM status of job %s refused: %s", job.id, exc)
                self._refs[job.id] = DM_REFUSED
                return True
            log.info("job %s: the owner's DMs are closed to the bot", job.id)
            await self._remember(job, DM_CLOSED)
        except discord.NotFound:  # the user deleted it: the result is posted anew
            return True
        except (discord.HTTPException, TimeoutError, OSError) as exc:
            log.warning("DM status of job %s failed: %s", job.id, exc)
            return False
        return True

    async def _post(self, client: discord.Client, job: Job, rendered: Rendered) -> None:
        from adapters.discord.outbound import _kwargs

        channel = await client.create_dm(discord.Object(id=int(job.destination.user_id)))
        message = await channel.send(**_kwargs(rendered, edit=False))
        await self._remember(job, f"{channel.id}:{message.id}")

    async def replace(self, job: Job, reply: Reply) -> bool | None:
        """The result in place of the DM status: True once it is there, False when it may work later, None when
        there is no status message to edit (the result is posted anew)."""
        from adapters.discord.outbound import _kwargs

        value = await self.recorded(job)
        client = self.outbound.client
        if value is None or ":" not in value or client is None:
            return None
        channel_id, _, message_id = value.partition(":")
        rendered: Rendered = await asyncio.to_thread(render, reply, self.outbound.config.upload_limit_bytes)
        try:
            message = client.get_partial_messageable(int(channel_id)).get_partial_message(int(message_id))
            await message.edit(**_kwargs(rendered, edit=True, final=True))
        except discord.HTTPException as exc:
            if 400 <= exc.status < 500 and exc.status != 429:  # gone or refused: a new message instead
                log.info("job %s: its DM status cannot take the result (%s); posting it", job.id, exc)
                return None
            log.warning("DM result of job %s failed: %s", job.id, exc)
            return False
        except (TimeoutError, OSError) as exc:
            log.warning("DM result of job %s failed: %s", job.id, exc)
            return False
        self._refs.pop(job.id, None)
        return True
