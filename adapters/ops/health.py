"""The optional ops endpoint: GET /healthz for Docker and orchestrators, GET /metrics for Prometheus."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST

from adapters.ops.metrics import JobsProvider, OpsMetrics, StateCounts
from bot.models import Job

log = logging.getLogger(__name__)

PlatformsStatus = Callable[[], dict[str, bool]]


class OpsServer:
    """A small aiohttp server beside the bot, on loopback unless told otherwise.

    `jobs_provider` returns the job queue's port (or None before it exists); `platforms_status` returns
    whether each chat platform is connected. Port 0 picks a free port (see `port` after `start()`).
    """

    def __init__(
        self,
        jobs_provider: JobsProvider,
        platforms_status: PlatformsStatus,
        port: int,
        host: str = "127.0.0.1",
        *,
        metrics: OpsMetrics | None = None,
        state_counts: StateCounts | None = None,
    ) -> None:
        self.jobs_provider = jobs_provider
        self.platforms_status = platforms_status
        self.host = host
        self.port = port
        self.metrics = metrics or OpsMetrics(jobs_provider, state_counts)
        self._runner: web.AppRunner | None = None
        self.extra_routes: list[Callable[[web.Application], None]] = []  # e.g. the web gallery's pages

    # The hooks the rest of the bot calls; they only count, so they are safe from any coroutine.
    def observe_job(self, job: Job) -> None:
        self.metrics.observe_job(job)

    def record_rate_limited(self, platform: str) -> None:
        self.metrics.record_rate_limited(platform)

    def record_quota_denial(self) -> None:
        self.metrics.record_quota_denial()

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get("/healthz", self._healthz)
        app.router.add_get("/metrics", self._metrics)
        for add in self.extra_routes:
            add(app)
        runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await runner.setup()
        site = web.TCPSite(runner, self.host, self.port)
        await site.start()
        self._runner = runner
        address = runner.addresses[0]
        self.port = int(address[1])
        log.info("ops endpoint on %s (/healthz, /metrics)", self.url)

    async def stop(self) -> None:
        if self._runner is not None:
            runner, self._runner = self._runner, None
            await runner.cleanup()

    def health(self) -> tuple[bool, dict[str, Any]]:
        """Whether the bot is healthy, and the report /healthz shows."""
        jobs = self.jobs_provider()
        backends = {} if jobs is None else {backend.label: backend.healthy for backend in jobs.backends()}
        try:
            platforms = dict(self.platforms_status())
        except Exception:
            log.exception("reading the platform status failed")
            platforms = {}
        # Answering at all proves the event loop runs: this handler is a coroutine on it.
        ok = jobs is not None and not jobs.is_stopped() and any(backends.values()) and all(platforms.values())
        report: dict[str, Any] = {
            "ok": ok,
            "loop": "alive",
            "platforms": platforms,
            "backends": backends,
            "queued": 0 if jobs is None else len(jobs.queued_jobs()),
            "running": 0 if jobs is None else len(jobs.running_jobs()),
        }
        return ok, report

    async def _healthz(self, request: web.Request) -> web.Response:
        ok, report = self.health()
        return web.json_response(report, status=200 if ok else 503)

    async def _metrics(self, request: web.Request) -> web.Response:
        body = await self.metrics.render()
        response = web.Response(body=body)
        response.content_type = CONTENT_TYPE_LATEST.split(";")[0]
        response.charset = "utf-8"
        return response
