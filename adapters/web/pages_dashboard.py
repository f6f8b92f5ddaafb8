"""The team dashboard: usage per user and server over a day, a week and a month, quota left, backends."""

from __future__ import annotations

from collections import defaultdict
from datetime import date, timedelta

from aiohttp import web
from markupsafe import Markup

from adapters.web.charts import bars
from adapters.web.site import WebSite
from bot.quota import limits_for, quota_day


async def quota_left(
    site: WebSite, platform: str, user_id: str, servers: tuple[str, ...]
) -> list[tuple[str, float | None, float | None]]:
    """(chat, left for the user, left for the chat) today, by the same limits /quota uses (roles aside)."""
    services = site.services
    user = await services.accounts.user(platform, user_id)
    found: list[tuple[str, float | None, float | None]] = []
    for server_id in servers:
        server = await services.accounts.server(platform, server_id)
        limits = limits_for(services.settings.quota, services.clock(), user, server, [])
        if limits is None:
            return []
        used_user, used_server = await services.store.usage(platform, server_id, user_id, limits.day)
        found.append(
            (
                f"{platform}:{server_id}",
                None if limits.user is None else max(0.0, limits.user - used_user),
                None if limits.server is None else max(0.0, limits.server - used_server),
            )
        )
    return found


def add_routes(site: WebSite, router: web.UrlDispatcher) -> None:
    async def dashboard(request: web.Request) -> web.Response:
        session, viewer = await site.require(request)
        settings = site.services.settings
        today = quota_day(site.services.clock(), settings.quota)
        rows = await site.store.usage(viewer, today - timedelta(days=29))
        periods = {"today": today, "week": today - timedelta(days=6), "month": today - timedelta(days=29)}
        per_user: dict[str, dict[str, float]] = defaultdict(lambda: dict.fromkeys(periods, 0.0))
        per_server: dict[str, dict[str, float]] = defaultdict(lambda: dict.fromkeys(periods, 0.0))
        per_day: dict[str, float] = {(today - timedelta(days=n)).isoformat(): 0.0 for n in range(29, -1, -1)}
        for day, platform, server, user, cost, _jobs in rows:
            per_day[day] = per_day.get(day, 0.0) + cost
            for name, start in periods.items():
                if date.fromisoformat(day) >= start:
                    per_user[f"{platform}:{user}"][name] += cost
                    per_server[f"{platform}:{server}"][name] += cost
        left = await quota_left(site, session.platform, session.user_id, viewer.servers)
        workers = [
            {
                "name": backend.name,
                "kind": backend.kind,
                "healthy": backend.healthy,
                "detail": backend.detail,
                "model": backend.loaded or "",
                "switches": backend.model_switches,
                "done": backend.completed,
            }
            for backend in site.services.jobs.backends()
        ]
        chart = Markup(bars(list(per_day.items()), "cost per day"))  # built from escaped parts
        return site.render(
            request,
            "dashboard.html",
            session,
            per_user=sorted(per_user.items(), key=lambda item: -item[1]["month"]),
            per_server=sorted(per_server.items(), key=lambda item: -item[1]["month"]),
            periods=list(periods),
            quota_left=left,
            quota_on=settings.quota.enabled,
            workers=workers,
            chart=chart,
        )

    router.add_get("/gallery/dashboard", dashboard)
