"""Chats that change under the bot: removed or blocked (cancel and refund what waits there), or given a new id."""

from __future__ import annotations

import logging

from bot.engine import Engine
from bot.errors import NotFound
from bot.ports import AccountStore, ChatRecords, ServerSettings
from bot.privacy import hides

log = logging.getLogger(__name__)


async def chat_gone(engine: Engine, platform: str, channel_id: str) -> int:
    """The bot can no longer write in this chat: its jobs are cancelled (refunded) and nothing is delivered there.

    Returns how many jobs were cancelled.
    """
    engine.gone_chats.add((platform, channel_id))
    # A private job's result goes to its user's private chat, not here: it goes on (bot.privacy).
    doomed = [job for job in engine.active_jobs_in(platform, channel_id) if not hides(job)]
    for job in doomed:
        try:
            await engine.cancel(job.id)
        except NotFound:
            continue  # finished meanwhile
    if doomed:
        log.info("chat %s:%s is gone: cancelled %d job(s)", platform, channel_id, len(doomed))
    return len(doomed)


def chat_back(engine: Engine, platform: str, channel_id: str) -> None:
    """The bot was added to the chat again (or unblocked)."""
    engine.gone_chats.discard((platform, channel_id))


async def chat_moved(
    engine: Engine, platform: str, old: str, new: str, accounts: AccountStore | None = None
) -> list[str]:
    """A chat got a new id (Telegram group -> supergroup): its settings, stored jobs and jobs in memory follow."""
    if accounts is not None:
        await _move_settings(engine, accounts, platform, old, new)
    moved: list[str] = []
    if isinstance(engine.store, ChatRecords):
        moved = await engine.store.move_chat(platform, old, new)
    for job in engine.active_jobs_in(platform, old):
        destination = job.destination
        server = new if destination.server_id == old else destination.server_id
        # The message it answered stays behind in the old chat: nothing to reply to in the new one.
        update = {"channel_id": new, "server_id": server, "source_message_id": None}
        job.destination = destination.model_copy(update=update)
        if job.id not in moved:
            moved.append(job.id)
    log.info("chat %s:%s moved to %s: %d job(s) follow", platform, old, new, len(moved))
    return moved


async def _move_settings(engine: Engine, accounts: AccountStore, platform: str, old: str, new: str) -> None:
    """The chat's settings (language, presets, limits, bans, pause) go with it, unless the new id has its own."""
    before = await accounts.server(platform, old)
    if before == ServerSettings(platform=platform, server_id=old):
        return
    if await accounts.server(platform, new) != ServerSettings(platform=platform, server_id=new):
        return
    settings = before.copy()
    settings.server_id = new
    await accounts.save_server(settings)
    if settings.paused:
        engine.scheduler.pause(f"{platform}:{new}")
