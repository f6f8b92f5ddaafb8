"""Chats that change under the bot: removed or blocked (cancel and refund what waits there), or given a new id."""

from __future__ import annotations

import logging

from bot.errors import NotFound
from bot.jobs import Jobs
from bot.ports import AccountStore, ServerSettings
from bot.privacy import hides

log = logging.getLogger(__name__)


async def chat_gone(jobs: Jobs, platform: str, channel_id: str) -> int:
    """The bot can no longer write in this chat: its jobs are cancelled (refunded) and nothing is delivered there.

    Returns how many jobs were cancelled.
    """
    jobs.mark_gone(platform, channel_id)
    # A private job's result goes to its user's private chat, not here: it goes on (bot.privacy).
    doomed = [job for job in jobs.active_jobs_in(platform, channel_id) if not hides(job)]
    for job in doomed:
        try:
            await jobs.cancel(job.id)
        except NotFound:
            continue  # finished meanwhile
    if doomed:
        log.info("chat %s:%s is gone: cancelled %d job(s)", platform, channel_id, len(doomed))
    return len(doomed)


def chat_back(jobs: Jobs, platform: str, channel_id: str) -> None:
    """The bot was added to the chat again (or unblocked)."""
    jobs.mark_back(platform, channel_id)


async def chat_moved(jobs: Jobs, platform: str, old: str, new: str, accounts: AccountStore | None = None) -> list[str]:
    """A chat got a new id (Telegram group -> supergroup): its settings, stored jobs and jobs in memory follow."""
    if accounts is not None:
        await _move_settings(jobs, accounts, platform, old, new)
    moved = await jobs.move_chat(platform, old, new)
    log.info("chat %s:%s moved to %s: %d job(s) follow", platform, old, new, len(moved))
    return moved


async def _move_settings(jobs: Jobs, accounts: AccountStore, platform: str, old: str, new: str) -> None:
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
        await jobs.pause(f"{platform}:{new}")
