"""The live queue: what runs on each backend (with its latest preview) and what waits, per server.

Read through the Jobs port (running_jobs, queued_jobs, places, backends); updates go out as server-sent events.
"""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from adapters.web.site import SECURITY_HEADERS, WebSite, render_fragment
from adapters.web.thumbs import sniff
from bot.models import Job
from storage.web import Viewer

HEARTBEAT_SECONDS = 1.0


def visible(viewer: Viewer, job: Job) -> bool:
    destination = job.destination
    if viewer.admin:
        return True
    return destination.platform == viewer.platform and (  # a private job is its owner's only (and the admins')
        (destination.server_id in viewer.servers and not destination.private) or destination.user_id == viewer.user_id
    )


def snapshot(site: WebSite, viewer: Viewer) -> dict[str, Any]:
    """Backends with their running job, and waiting jobs grouped by server, as the viewer may see them."""
    jobs = site.services.jobs
    site.previews.forget_finished({job.id for job in jobs.running_jobs()})
    backends = []
    for backend in jobs.backends():
        job = backend.current if backend.current is not None and visible(viewer, backend.current) else None
        backends.append(
            {
                "name": backend.label,
                "healthy": backend.healthy,
                "job": job,
                "preview": job is not None and job.id in site.previews.previews,
            }
        )
    queued = [(place, job) for place, job in jobs.queued_jobs() if visible(viewer, job)]
    places = jobs.places([job.id for _, job in queued])
    servers: dict[str, list[dict[str, Any]]] = {}
    for place, job in queued:
        eta = places.get(job.id, (None, None))[1]
        servers.setdefault(job.queue_key, []).append({"job": job, "position": place, "eta": eta})
    paused = {key for key in servers if jobs.is_paused(key)}
    return {"backends": backends, "servers": servers, "paused": paused, "version": site.previews.version}


def add_routes(site: WebSite, router: web.UrlDispatcher) -> None:
    async def page(request: web.Request) -> web.Response:
        session, viewer = await site.require(request)
        return site.render(request, "queue_page.html", session, **snapshot(site, viewer))

    async def events(request: web.Request) -> web.StreamResponse:
        session, _ = await site.require(request)
        response = web.StreamResponse(
            headers={**SECURITY_HEADERS, "Content-Type": "text/event-stream", "Cache-Control": "no-cache"}
        )
        await response.prepare(request)
        lang, last, version = site.lang(request), "", -1
        while not site.closed:
            version = await site.previews.wait(version, HEARTBEAT_SECONDS)
            state = snapshot(site, await site.viewer(session))
            html = render_fragment("queue_body.html", lang, **state)
            if html != last:
                last = html
                try:
                    await response.write(f"data: {json.dumps({'html': html})}\n\n".encode())
                except ConnectionResetError:  # the browser left the page
                    break
        return response

    async def preview(request: web.Request) -> web.Response:
        session, viewer = await site.require(request)
        job = site.services.jobs.active_job(request.match_info["job_id"])
        data = site.previews.previews.get(job.id) if job is not None and visible(viewer, job) else None
        if data is None:
            raise site.refuse(request, session, 404, "not_found")
        headers = {**SECURITY_HEADERS, "Cache-Control": "no-store"}
        return web.Response(body=data, content_type=sniff(data), headers=headers)

    router.add_get("/gallery/queue", page)
    router.add_get("/gallery/queue/events", events)
    router.add_get("/gallery/preview/{job_id}", preview)
