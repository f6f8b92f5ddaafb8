"""/quota: what the user and the server have spent today and what is left."""

from __future__ import annotations

from bot.i18n import t
from bot.quota import limits_for
from bot.replies import Reply
from commands.context import Invocation, Services, is_bot_admin, language_for


def _line(lang: str, label: str, used: float, limit: float | None) -> str:
    if limit is None:
        return t(lang, "quota.unlimited", label=label, used=used)
    return t(lang, "quota.limited", label=label, used=used, limit=limit, left=max(0.0, limit - used))


async def quota(services: Services, invocation: Invocation, options: dict[str, object]) -> Reply:
    config = services.settings.quota
    user = await services.accounts.user(invocation.platform, invocation.user_id)
    server = await services.accounts.server(invocation.platform, invocation.destination.server_id)
    lang = await language_for(services, invocation)  # the user's /settings language first
    limits = limits_for(config, services.clock(), user, server, invocation.roles)
    if limits is None:
        return Reply(text=t(lang, "quota.off"), private=True)
    used_user, used_server = await services.store.usage(
        invocation.platform, invocation.destination.server_id, invocation.user_id, limits.day
    )
    admin = t(lang, "quota.admin") if is_bot_admin(services, invocation) and user.daily_limit is None else ""
    day = limits.day.isoformat()
    header = t(lang, "quota.header", day=day, hour=config.reset_hour, timezone=config.timezone, admin=admin)
    text = "\n".join(
        [
            header,
            _line(lang, t(lang, "quota.you"), used_user, limits.user),
            _line(lang, t(lang, "quota.server"), used_server, limits.server),
            t(lang, "quota.cost"),
        ]
    )
    return Reply(text=text, private=True)
