"""Outbound port for Discord: edit the job's status message through the interaction token while it is fresh,
then through the bot token on the stored channel and message id. Never raises for platform errors.

The outbound owns a job's status message from its first post: the handler registers the interaction that
may queue a job (`expect`) before running the command, and the first status the engine publishes is posted
as that interaction's answer, in the same per-job stream as every later edit and the result."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, NoReturn

import discord

from adapters.discord.direct_status import DirectStatusMessages
from adapters.discord.render import NO_MENTIONS, Rendered, render
from bot.config_discord import DiscordConfig
from bot.i18n import t
from bot.lifecycle import uncancelled
from bot.models import Job
from bot.ports import ChatRecords, Undeliverable
from bot.privacy import DirectClosed
from bot.private_status import DM_CLOSED
from bot.replies import Reply
from commands.context import Services

log = logging.getLogger(__name__)

# Not the interaction token: it is a credential (it posts as the bot for 15 minutes), so it stays in memory;
# after a restart the bot token edits the stored channel message instead.
KEYS = ("discord_app", "discord_issued", "discord_channel", "discord_message")
DM_MESSAGE = "discord_dm"  # "channel:message" of a private result posted in the user's DM
CANNOT_SEND = 50007  # "Cannot send messages to this user": DMs closed to the bot


@dataclass
class Pending:
    """An interaction whose answer may become a job's status message; one answer at a time."""

    interaction: discord.Interaction[Any]
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)


@dataclass
class MessageRef:
    """Where a job's status message lives and how long its interaction token is good for."""

    channel_id: str
    message_id: str | None = None
    app_id: str | None = None
    token: str | None = None
    issued: float = 0.0
    limit: int | None = None

    def as_messages(self) -> dict[str, str]:
        values = (self.app_id or "", str(self.issued), self.channel_id, self.message_id or "")
        return dict(zip(KEYS, values, strict=True))

    @classmethod
    def from_messages(cls, messages: dict[str, str]) -> MessageRef | None:
        if not messages.get("discord_channel"):
            return None
        return cls(
            channel_id=messages["discord_channel"],
            message_id=messages.get("discord_message") or None,
            app_id=messages.get("discord_app") or None,
            issued=float(messages.get("discord_issued") or 0),
        )


def _token_dead(exc: discord.HTTPException) -> bool:
    return exc.status == 401 or exc.code in (50027, 10015)


class DiscordOutbound:
    """Status edits and final delivery for jobs that came from Discord."""

    platform = "discord"
    owns_status = True

    def __init__(self, config: DiscordConfig, default_interval: float, clock: Callable[[], float] = time.time) -> None:
        self.config = config
        self.interval = config.progress_interval_seconds
        self.default_interval = default_interval
        self.clock = clock
        self.client: discord.Client | None = None
        self.services: Services | None = None
        self._refs: dict[str, MessageRef] = {}
        self._pending: dict[str, Pending] = {}  # interaction id -> an interaction that may queue a job
        self._thinking: set[str] = set()  # deferred with a public "thinking…" message, which a followup fills
        self.direct = DirectStatusMessages(self)  # private jobs' status in their owners' DMs

    def min_interval(self, job: Job) -> float:
        return self.default_interval if self.interval is None else self.interval

    # ---- interactions whose answer may become a status message -----------------------------------

    def expect(self, interaction: discord.Interaction[Any]) -> None:
        """The command may queue a job: if it does, the job's first status is posted as this interaction's answer."""
        self._pending[str(interaction.id)] = Pending(interaction)

    def forget(self, interaction: discord.Interaction[Any]) -> None:
        self._pending.pop(str(interaction.id), None)

    async def defer(self, interaction: discord.Interaction[Any], thinking: bool) -> None:
        """Acknowledge a slow command, unless its answer went out meanwhile."""
        pending = self._pending.get(str(interaction.id)) or Pending(interaction)
        async with pending.lock:
            if not interaction.response.is_done():
                await interaction.response.defer(thinking=thinking)
                if thinking:
                    self._thinking.add(str(interaction.id))

    async def respond(self, interaction: discord.Interaction[Any], rendered: Rendered, private: bool) -> int | None:
        """Answer an interaction (its first response, or a follow-up once it was deferred); the message id."""
        kwargs: dict[str, Any] = {"content": rendered.content, "allowed_mentions": NO_MENTIONS, "files": rendered.files}
        if rendered.view is not None:
            kwargs["view"] = rendered.view
        pending = self._pending.get(str(interaction.id)) or Pending(interaction)
        async with pending.lock:
            try:
                if not interaction.response.is_done():
                    callback = await interaction.response.send_message(ephemeral=private, **kwargs)
                    return callback.message_id
                loading = str(interaction.id) in self._thinking
                self._thinking.discard(str(interaction.id))
                if private and loading:  # the followup would fill the public loading message, flags ignored
                    await interaction.delete_original_response()
                message = await interaction.followup.send(ephemeral=private, wait=True, **kwargs)
                return message.id
            except discord.HTTPException as exc:
                log.warning("answering interaction %s failed: %s", interaction.id, exc)
                return None

    async def _post_first(self, job: Job, reply: Reply) -> bool:
        """The job's first status (or its result): the answer to the interaction that queued it, if it waits."""
        pending = self._pending.pop(job.destination.source_message_id or "", None)
        if pending is None:
            return False
        interaction = pending.interaction
        limit = interaction.filesize_limit
        rendered = await asyncio.to_thread(render, reply, limit)

        async def post() -> None:
            message_id = await self.respond(interaction, rendered, private=False)
            if message_id is not None:
                ref = MessageRef(
                    channel_id=str(interaction.channel_id),
                    message_id=str(message_id),
                    app_id=str(interaction.application_id),
                    token=interaction.token,
                    issued=interaction.created_at.timestamp(),
                    limit=limit,
                )
                await self.remember(job.id, ref)

        await uncancelled(post())  # a cancelled stream still records the message it posted
        return job.id in self._refs

    async def remember(self, job_id: str, ref: MessageRef) -> None:
        """Keep the status message of a job, in memory and in the job store (for restarts), in one write."""
        self._refs[job_id] = ref
        if self.services is not None:
            store = self.services.store
            if isinstance(store, ChatRecords):
                await store.set_messages(job_id, ref.as_messages())
            else:
                for key, value in ref.as_messages().items():
                    await store.set_message(job_id, key, value)

    async def _ref(self, job: Job) -> MessageRef | None:
        ref = self._refs.get(job.id) or MessageRef.from_messages(job.messages)
        if ref is None and self.services is not None:
            stored = await self.services.store.get(job.id)
            ref = MessageRef.from_messages(stored.messages) if stored else None
        if ref is not None:
            self._refs[job.id] = ref
        return ref

    async def update_status(self, job: Job, reply: Reply) -> None:
        ref = await self._ref(job)
        if ref is None or ref.message_id is None:
            await self._post_first(job, reply)
            return
        try:
            await self._show(job, ref, reply, final=False)
        except (TimeoutError, discord.HTTPException, OSError, ValueError) as exc:
            log.warning("status edit for job %s failed: %s", job.id, exc)

    async def deliver(self, job: Job, reply: Reply) -> bool:
        ref = await self._ref(job)
        if ref is None and await self._post_first(job, reply):
            self._refs.pop(job.id, None)
            return True
        ref = ref or MessageRef(channel_id=job.destination.channel_id)
        for attempt in range(self.config.deliver_attempts):
            try:
                await self._show(job, ref, reply, final=True)
                self._refs.pop(job.id, None)
                return True
            except discord.HTTPException as exc:
                if 400 <= exc.status < 500 and exc.status != 429:  # refused for good: trying again cannot help
                    await self._refused(job, ref, exc)
                log.warning("delivery of job %s failed (attempt %d): %s", job.id, attempt + 1, exc)
                await asyncio.sleep(min(2.0**attempt * 0.5, 10.0))
            except (TimeoutError, OSError, ValueError) as exc:
                log.warning("delivery of job %s failed (attempt %d): %s", job.id, attempt + 1, exc)
                await asyncio.sleep(min(2.0**attempt * 0.5, 10.0))
        return False

    async def _refused(self, job: Job, ref: MessageRef, exc: discord.HTTPException) -> NoReturn:
        """Tell the channel why the result is not there (unless the bot cannot write there), then give up."""
        reason = exc.text or f"HTTP {exc.status}"
        if exc.status not in (403, 404) and self.client is not None:
            text = t(job.destination.locale, "delivery.failed", job=job.id, reason=reason[:200])
            try:
                channel = self.client.get_partial_messageable(int(ref.channel_id))
                await channel.send(content=text, allowed_mentions=NO_MENTIONS)
            except discord.HTTPException as report:
                log.warning("could not tell channel %s about job %s: %s", ref.channel_id, job.id, report)
        raise Undeliverable(f"Discord refused the result: {reason}") from exc

    async def deliver_direct(self, job: Job, reply: Reply, *, again: bool = False) -> bool:
        """A private result in the user's DM (opened with POST /users/@me/channels); see `DirectOutbound`.

        Discord answers 403 / 50007 "Cannot send messages to this user" when the user does not accept DMs from the
        server's members (or blocked the bot): `DirectClosed`, telling them to allow DMs and use /show there.
        """
        if not again and job.messages.get(DM_MESSAGE):
            return True  # posted before a retry or a restart: not twice
        if not again:
            status = await self.direct.recorded(job)
            if status == DM_CLOSED:  # refused already: not one more try
                raise DirectClosed(t(job.destination.locale, "private.closed_discord", job=job.id))
            replaced = await self.direct.replace(job, reply)
            if replaced is not None:
                if replaced and status is not None:
                    await self._remember_dm(job, status)
                return replaced
        client = self.client
        if client is None:
            return False
        try:
            channel = await client.create_dm(discord.Object(id=int(job.destination.user_id)))
            rendered = await asyncio.to_thread(render, reply, self.config.upload_limit_bytes)
            message = await channel.send(**_kwargs(rendered, edit=False))
        except discord.Forbidden as exc:
            if exc.code == CANNOT_SEND:
                raise DirectClosed(t(job.destination.locale, "private.closed_discord", job=job.id)) from exc
            raise Undeliverable(f"Discord refused the DM: {exc.text or exc.status}") from exc
        except (discord.HTTPException, TimeoutError, OSError) as exc:
            if isinstance(exc, discord.HTTPException) and 400 <= exc.status < 500 and exc.status != 429:
                raise Undeliverable(f"Discord refused the DM: {exc.text or exc.status}") from exc
            log.warning("DM of job %s failed: %s", job.id, exc)
            return False
        if not again:
            await self._remember_dm(job, f"{channel.id}:{message.id}")
        return True

    async def _remember_dm(self, job: Job, value: str) -> None:
        job.messages[DM_MESSAGE] = value
        if self.services is not None:
            await self.services.store.set_message(job.id, DM_MESSAGE, value)

    def _fresh(self, ref: MessageRef) -> bool:
        return bool(ref.token and ref.app_id) and self.clock() - ref.issued < self.config.token_switch_seconds

    async def _show(self, job: Job, ref: MessageRef, reply: Reply, final: bool) -> None:
        limit = ref.limit or self.config.upload_limit_bytes
        rendered = await asyncio.to_thread(render, reply, limit)
        client = self.client
        if client is None:
            raise ValueError("discord client not started")
        if ref.message_id is not None and self._fresh(ref):
            try:
                await self._edit_webhook(client, ref, rendered, final)
                return
            except discord.HTTPException as exc:
                if not _token_dead(exc):
                    raise
                log.info("interaction token of job %s expired; using the bot token", job.id)
            rendered = await asyncio.to_thread(render, reply, limit)  # files are consumed by a failed send
        ref.token = None
        channel = client.get_partial_messageable(int(ref.channel_id))
        if ref.message_id is not None:
            try:
                await channel.get_partial_message(int(ref.message_id)).edit(**_kwargs(rendered, edit=True, final=final))
                return
            except discord.NotFound:
                if not final:
                    return
                rendered = await asyncio.to_thread(render, reply, limit)
        message = await channel.send(**_kwargs(rendered, edit=False))
        ref.message_id = str(message.id)
        await self.remember(job.id, ref)

    async def _edit_webhook(self, client: discord.Client, ref: MessageRef, rendered: Rendered, final: bool) -> None:
        webhook = discord.Webhook.partial(int(ref.app_id or 0), ref.token or "", client=client)
        await webhook.edit_message(int(ref.message_id or 0), **_kwargs(rendered, edit=True, final=final))


def _kwargs(rendered: Rendered, edit: bool, final: bool = True) -> dict[str, Any]:
    kwargs: dict[str, Any] = {"content": rendered.content, "allowed_mentions": NO_MENTIONS}
    if edit:
        if rendered.files or final:  # a progress edit without a preview keeps the one shown (no `attachments`)
            kwargs["attachments"] = rendered.files
        kwargs["view"] = rendered.view
    else:
        kwargs["files"] = rendered.files
        if rendered.view is not None:
            kwargs["view"] = rendered.view
    return kwargs
