"""The web gallery, live queue, dashboard and admin pages, served on the ops endpoint under /gallery."""

from __future__ import annotations

from collections.abc import Callable

from aiohttp import web

from adapters.web import pages_admin, pages_dashboard, pages_gallery, pages_queue
from adapters.web.auth import Signer, load_key
from adapters.web.links import WebSignIn
from adapters.web.previews import PreviewBoard
from adapters.web.site import WebSite
from adapters.web.thumbs import Thumbnails
from bot.secret_source import SecretSource
from commands.context import Services
from storage.db import Database
from storage.web import SqliteWebStore

__all__ = ["WebSite", "create"]


def create(services: Services, db: Database, secrets: SecretSource, served_at: Callable[[], str] = str) -> WebSite:
    """Build the site, give the commands its sign-in links and the notifier its preview hook."""
    settings = services.settings
    signer = Signer(load_key(secrets, settings.data_dir))
    store = SqliteWebStore(db)
    links = WebSignIn(settings.web, store, signer, clock=services.clock, served_at=served_at)
    previews = PreviewBoard()
    site = WebSite(services, store, signer, links, previews, Thumbnails(settings.data_dir / "thumbs"))
    services.sign_in = links
    services.jobs.watch_statuses(previews.observe)
    return site


def add_routes(site: WebSite, app: web.Application) -> None:
    """Every page under /gallery, on the given aiohttp application."""
    for module in (pages_gallery, pages_queue, pages_dashboard, pages_admin):
        module.add_routes(site, app.router)

    async def closing(_: web.Application) -> None:  # live pages end before the server waits for handlers
        site.closed = True
        site.previews.poke()

    app.on_shutdown.append(closing)
