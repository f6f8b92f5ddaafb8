"""Admin pages: the same use cases as `/admin` in chat (commands.admin), for the bot's admins."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from adapters.web.auth import Session
from adapters.web.site import WebSite
from bot.models import Destination
from commands.context import Invocation
from commands.dispatch import dispatch
from commands.registry import CommandInput

ACTIONS = ("pause", "resume", "quota", "ban", "unban", "allow", "deny")
BACKEND_ACTIONS = ("drain", "undrain")  # bot-wide: the backend is named, no server


def invocation(session: Session, server: str, channel: str) -> Invocation:
    """The admin as if they typed /admin in that server: a bot admin there, a chat admin on other platforms."""
    platform, _, server_id = server.partition(":")
    destination = Destination(
        platform=platform,
        server_id=server_id,
        channel_id=channel or server_id,
        user_id=session.user_id,
        user_name=session.name,
    )
    return Invocation(destination=destination, is_admin=True)


def command(form: dict[str, str]) -> CommandInput:
    """The form as the /admin command's options, in the same shape the chat parser gives."""
    action = form.get("action", "")
    options: dict[str, object] = {"action": action}
    if action == "quota":
        options.update(target="server", value=form.get("amount", ""))
    elif action in ("ban", "unban"):
        options["target"] = form.get("user", "")
    elif action in ("allow", "deny"):
        options.update(target=form.get("preset", ""), value=form.get("channel", ""))
    elif action in BACKEND_ACTIONS:
        options["target"] = form.get("backend", "")
    return CommandInput("admin", {key: value for key, value in options.items() if value != ""})


def add_routes(site: WebSite, router: web.UrlDispatcher) -> None:
    async def show(request: web.Request, session: Session, message: str = "", error: bool = False) -> web.Response:
        viewer = await site.viewer(session)
        servers = []
        for key in await site.store.servers(viewer):
            platform, _, server_id = key.partition(":")
            record = await site.services.accounts.server(platform, server_id)
            servers.append({"key": key, "paused": site.services.jobs.is_paused(key), "record": record})
        presets = sorted(site.services.settings.presets)
        backends: dict[str, dict[str, Any]] = {}  # one row per name: a drain acts on that name in every process
        for backend in site.services.jobs.backends():
            row = backends.setdefault(backend.name.lower(), {"name": backend.name, "drained": False, "busy": False})
            row["drained"] |= backend.drained
            row["busy"] |= backend.current is not None
        return site.render(
            request,
            "admin_page.html",
            session,
            servers=servers,
            presets=presets,
            backends=list(backends.values()),
            message=message,
            error=error,
        )

    async def page(request: web.Request) -> web.Response:
        session, _ = await site.require(request, admin=True)
        return await show(request, session)

    async def act(request: web.Request) -> web.Response:
        session, _ = await site.require(request, admin=True)
        form = await site.form(request, session)
        if form.get("action") in BACKEND_ACTIONS:  # as the admin's own platform, where they are a bot admin
            form["server"] = f"{session.platform}:{session.user_id}"
        if form.get("action") not in (*ACTIONS, *BACKEND_ACTIONS) or ":" not in form.get("server", ""):
            raise site.refuse(request, session, 400, "not_found")
        reply = await dispatch(
            site.services, invocation(session, form["server"], form.get("channel", "")), command(form)
        )
        return await show(request, session, reply.text, error=reply.tone.value == "error")

    router.add_get("/gallery/admin", page)
    router.add_post("/gallery/admin", act)
