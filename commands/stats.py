"""/stats: images and cost per user on this server, today and this week (quota days and time zone)."""

from __future__ import annotations

from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from bot.i18n import t
from bot.quota import quota_day
from bot.replies import Reply
from commands.context import Invocation, Services, language_for

TOP_USERS = 10


async def stats(services: Services, invocation: Invocation, options: dict[str, object]) -> Reply:
    lang = await language_for(services, invocation)
    config = services.settings.quota
    zone = ZoneInfo(config.timezone)
    today = quota_day(services.clock(), config)
    day_start = datetime.combine(today, time(hour=config.reset_hour), tzinfo=zone)
    week_start = day_start - timedelta(days=today.weekday())
    lines = []
    for label, since in ((t(lang, "stats.today"), day_start), (t(lang, "stats.week"), week_start)):
        rows = await services.store.stats(invocation.platform, invocation.destination.server_id, since)
        images = sum(count for _, count, _ in rows)
        cost = sum(amount for _, _, amount in rows)
        images_text, users_text = t(lang, "stats.images", count=images), t(lang, "stats.users", count=len(rows))
        lines.append(t(lang, "stats.total", period=label, images=images_text, cost=round(cost, 2), users=users_text))
        for user_id, count, amount in rows[:TOP_USERS]:
            lines.append(
                t(lang, "stats.user", user=user_id, images=t(lang, "stats.images", count=count), cost=round(amount, 2))
            )
    return Reply(text="\n".join(lines), private=True)
