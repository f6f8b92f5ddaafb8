"""Sign-in, the grid of results, one job's page, and its images (only through an access check)."""

from __future__ import annotations

import asyncio

from aiohttp import web

from adapters.web.auth import COOKIE
from adapters.web.site import HERE, SECURITY_HEADERS, WebSite
from adapters.web.thumbs import content_type
from storage.web import Filters

CACHE_PRIVATE = {"Cache-Control": "private, max-age=86400"}


def add_routes(site: WebSite, router: web.UrlDispatcher) -> None:
    async def confirm(request: web.Request) -> web.Response:
        # Link previewers (Telegram's, Discord's) fetch links with GET: only the button's POST uses the token.
        token = request.query.get("token", "")
        if not site.links.well_formed(token):
            raise site.refuse(request, None, 403, "link_refused")
        return site.render(request, "login.html", None, token=token)

    async def login(request: web.Request) -> web.StreamResponse:
        form = await request.post()
        who = await site.links.redeem(str(form.get("token", "")))
        if who is None:
            raise site.refuse(request, None, 403, "link_refused")
        session = site.new_session(who.platform, who.user_id, who.user_name)
        response = web.HTTPSeeOther("/gallery", headers=SECURITY_HEADERS)  # drops the token from the address bar
        site.set_cookie(response, session)
        raise response

    async def logout(request: web.Request) -> web.StreamResponse:
        session, _ = await site.require(request)
        await site.form(request, session)
        response = web.HTTPSeeOther("/gallery/signed-out")
        response.del_cookie(COOKIE, path="/gallery")
        raise response

    async def signed_out(request: web.Request) -> web.Response:
        return site.render(request, "message.html", None, message_key="sign_in_needed")

    async def index(request: web.Request) -> web.Response:
        session, viewer = await site.require(request)
        query = request.query
        filters = Filters(
            user=query.get("user", "").strip()[:64],
            server=query.get("server", "").strip()[:128],
            preset=query.get("preset", "").strip()[:64],
            text=query.get("q", "").strip()[:200],
        )
        size = site.config.page_size
        tiles = await site.store.page(viewer, filters, query.get("after"), size + 1)
        more = len(tiles) > size
        tiles = tiles[:size]
        params = {
            k: v
            for k, v in (
                ("user", filters.user),
                ("server", filters.server),
                ("preset", filters.preset),
                ("q", filters.text),
            )
            if v
        }
        older = None
        if more:
            older = str(request.rel_url.with_query({**params, "after": tiles[-1].cursor}))
        return site.render(
            request,
            "gallery.html",
            session,
            tiles=tiles,
            filters=filters,
            older=older,
            first_page="after" in query,
            servers=await site.store.servers(viewer),
            presets=sorted(site.services.settings.presets),
        )

    async def job_page(request: web.Request) -> web.Response:
        session, viewer = await site.require(request)
        job = await site.store.job(viewer, request.match_info["job_id"])
        if job is None:
            raise site.refuse(request, session, 404, "not_found")
        images = await site.services.store.images(job.id)
        parent_id = job.request.parent_job_id
        parent = await site.store.job(viewer, parent_id) if parent_id else None
        took = (job.finished_at - job.started_at).total_seconds() if job.finished_at and job.started_at else None
        return site.render(request, "job.html", session, job=job, images=images, parent=parent, took=took)

    async def _image(request: web.Request, thumb: bool) -> web.StreamResponse:
        session, viewer = await site.require(request)
        image = await site.store.image(viewer, request.match_info["image_id"])
        files = site.services.files
        if image is None or not await files.exists(image.path):  # a folder or a bucket (storage/images.py)
            raise site.refuse(request, session, 404, "not_found")
        headers = {**SECURITY_HEADERS, **CACHE_PRIVATE}
        if thumb:
            path = await site.thumbs.path(image.id, lambda: files.read(image.path))
            kind = await asyncio.to_thread(content_type, path)
            return web.FileResponse(path, headers={**headers, "Content-Type": kind})
        data = await files.read(image.path)
        kind = await asyncio.to_thread(content_type, data)
        return web.Response(body=data, headers={**headers, "Content-Type": kind})

    async def image(request: web.Request) -> web.StreamResponse:
        return await _image(request, thumb=False)

    async def thumb(request: web.Request) -> web.StreamResponse:
        return await _image(request, thumb=True)

    async def style(request: web.Request) -> web.StreamResponse:
        return web.FileResponse(HERE / "static" / "style.css", headers={"Content-Type": "text/css"})

    async def script(request: web.Request) -> web.StreamResponse:
        return web.FileResponse(HERE / "static" / "live.js", headers={"Content-Type": "text/javascript"})

    router.add_get("/gallery/login", confirm)
    router.add_post("/gallery/login", login)
    router.add_post("/gallery/logout", logout)
    router.add_get("/gallery/signed-out", signed_out)
    router.add_get("/gallery", index)
    router.add_get("/gallery/job/{job_id}", job_page)
    router.add_get("/gallery/image/{image_id}", image)
    router.add_get("/gallery/thumb/{image_id}", thumb)
    router.add_get("/gallery/static/style.css", style)  # one named file each: no folder is ever listed
    router.add_get("/gallery/static/live.js", script)
