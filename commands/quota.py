"""/quota: what the user and the server have spent today and what is left."""

from __future__ import annotations

from bot.quota import limits_for
from bot.replies import Reply
from commands.context import Invocation, Services, is_admin


def _line(label: str, used: float, limit: float | None) -> str:
    if limit is None:
        return f"{label}: {used:g} used, no limit"
    return f"{label}: {used:g} of {limit:g} used, {max(0.0, limit - used):g} left"


async def quota(services: Services, invocation: Invocation, options: dict[str, object]) -> Reply:
    config = services.settings.quota
    user = await services.accounts.user(invocation.platform, invocation.user_id)
    server = await services.accounts.server(invocation.platform, invocation.destination.server_id)
    limits = limits_for(config, services.clock(), user, server, invocation.roles)
    if limits is None:
        return Reply(text="Quotas are off on this bot.", private=True)
    used_user, used_server = await services.store.usage(
        invocation.platform, invocation.destination.server_id, invocation.user_id, limits.day
    )
    admin = " (you are an admin: your own jobs are not limited)" if is_admin(services, invocation) else ""
    text = "\n".join(
        [
            f"Quota for {limits.day.isoformat()} (resets at {config.reset_hour:02d}:00 {config.timezone}){admin}",
            _line("You", used_user, limits.user),
            _line("This server", used_server, limits.server),
            "Cost = steps × megapixels × images (× the preset's weight).",
        ]
    )
    return Reply(text=text, private=True)
