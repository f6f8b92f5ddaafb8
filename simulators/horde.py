"""An AI Horde stand-in (backends.md §7): 202 + id, /check and /status, DELETE, `{message, rc}` errors,
anonymous limits (KudosUpfront, TooManyPrompts), per-endpoint rate limits and R2-style image URLs.

Bodies are validated against the real payload schema first (simulators/horde_schema.py: 400 with an `errors`
map); unknown models are accepted with a NoAvailableWorker warning and `is_possible: false`, as the real server
does. Images come at the requested size, as WebP on a separate R2-style origin whose links expire.
"""

from __future__ import annotations

import asyncio
import base64
import io
import itertools
import logging
import time
import uuid
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from simulators.blob_storage import BlobStorage
from simulators.horde_schema import VALIDATION_FAILED, validation_errors
from simulators.images import render_image
from simulators.serving import start_app

log = logging.getLogger(__name__)

ANONYMOUS = "0000000000"
MODELS = ["AlbedoBase XL (SDXL)", "Deliberate", "stable_diffusion"]
NO_WORKER = (
    "Warning: No available workers can fulfill this request. It will expire in 20 minutes unless a worker appears. "
    "Please confider reducing its size of the request or choosing a different model."
)  # sic, the real server's words


def rc_error(status: int, rc: str, message: str, retry_after: float | None = None) -> web.Response:
    headers = {"Retry-After": f"{retry_after:g}"} if retry_after is not None else None
    return web.json_response({"message": message, "rc": rc}, status=status, headers=headers)


@dataclass
class _Request:
    id: str
    body: dict[str, Any]
    key: str
    state: str = "waiting"  # waiting | processing | done | cancelled
    possible: bool = True  # some worker serves the models it asks for
    generations: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class HordeSimulator:
    """`workers` is how many requests run at once (0: nothing ever starts); `seconds_per_job` their duration."""

    workers: int = 1
    seconds_per_job: float = 0.2
    keys: set[str] = field(default_factory=lambda: {"registered-key"})
    anonymous_concurrency: int = 2
    possible: bool = True
    check_per_second: int = 10
    status_per_minute: int = 10
    requests: list[tuple[str, str, dict[str, str]]] = field(default_factory=list)
    r2_ttl_seconds: float = 1800.0
    lose_images: bool = False  # the worker's upload never reached R2: the links answer 404
    url: str = ""

    def __post_init__(self) -> None:
        self.jobs: dict[str, _Request] = {}
        self.r2 = BlobStorage(style="r2", ttl_seconds=self.r2_ttl_seconds)
        self.processing = asyncio.Event()
        self._hits: dict[str, deque[float]] = {}
        self._runner: web.AppRunner | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._slots = asyncio.Semaphore(max(self.workers, 1))
        self._counter = itertools.count(1)

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        app = web.Application(middlewares=[self._record])
        app.add_routes(
            [
                web.post("/api/v2/generate/async", self._submit),
                web.get("/api/v2/generate/check/{id}", self._check),
                web.get("/api/v2/generate/status/{id}", self._status),
                web.delete("/api/v2/generate/status/{id}", self._delete),
                web.get("/api/v2/status/heartbeat", self._heartbeat),
                web.get("/api/v2/status/models", self._models),
            ]
        )
        self._runner, self.url = await start_app(app, host, port)
        self.r2.ttl_seconds = self.r2_ttl_seconds
        await self.r2.start(host)
        return f"{self.url}/api/v2"

    async def stop(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.wait(self._tasks)
        await self.r2.stop()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    @web.middleware
    async def _record(self, request: web.Request, handler: Any) -> web.StreamResponse:
        self.requests.append((request.method, request.path, dict(request.headers)))
        result: web.StreamResponse = await handler(request)
        return result

    def _limited(self, bucket: str, limit: int, window: float) -> bool:
        now = time.monotonic()
        hits = self._hits.setdefault(bucket, deque())
        while hits and now - hits[0] > window:
            hits.popleft()
        if len(hits) >= limit:
            return True
        hits.append(now)
        return False

    def _retry_after(self, bucket: str, window: float) -> float:
        hits = self._hits.get(bucket)
        return round(max(0.05, window - (time.monotonic() - hits[0])), 2) if hits else window

    async def _submit(self, request: web.Request) -> web.Response:
        # The order of the real server: rate limits (decorators), the payload schema, then the key and the rest.
        if self._limited("async", 2, 1.0):
            return rc_error(429, "RateLimited", "2 per 1 second", retry_after=self._retry_after("async", 1.0))
        try:
            body = await request.json()
        except ValueError:
            return web.json_response({"message": "Failed to decode JSON object"}, status=400)
        errors = validation_errors(body)
        if errors:
            return web.json_response({"errors": errors, "message": VALIDATION_FAILED}, status=400)
        key = request.headers.get("apikey", ANONYMOUS)
        if key != ANONYMOUS and key not in self.keys:
            return rc_error(401, "InvalidAPIKey", "No user matching sent API Key. Have you remembered to register?")
        problem = self._validate(body, key)
        if problem is not None:
            return problem
        models = body.get("models") or []
        job = _Request(id=str(uuid.uuid4()), body=body, key=key, possible=all(m in MODELS for m in models))
        self.jobs[job.id] = job
        if self.workers > 0:
            task = asyncio.get_running_loop().create_task(self._run(job))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        answer: dict[str, Any] = {"id": job.id, "kudos": 12}
        if self.workers == 0 or not job.possible:
            answer["message"] = NO_WORKER
            answer["warnings"] = [{"code": "NoAvailableWorker", "message": NO_WORKER}]
        return web.json_response(answer, status=202)

    def _validate(self, body: dict[str, Any], key: str) -> web.Response | None:
        """The server's own checks, after the schema passed (`GenerateTemplate.validate`)."""
        params = body.get("params") or {}
        width, height, steps = params.get("width", 512), params.get("height", 512), params.get("steps", 30)
        if key == ANONYMOUS:
            if (width * height > 1024 * 1024 or int(steps) > 50) and not body.get("allow_downgrade"):
                return rc_error(403, "KudosUpfront", "Due to heavy demand, this request requires upfront kudos.")
            active = sum(1 for j in self.jobs.values() if j.key == ANONYMOUS and j.state in ("waiting", "processing"))
            if active >= self.anonymous_concurrency:
                return rc_error(429, "TooManyPrompts", "Too many anonymous requests waiting. Please wait.")
        return None

    async def _run(self, job: _Request) -> None:
        async with self._slots:
            if job.state != "waiting" or not job.possible:
                return
            job.state = "processing"
            self.processing.set()
            await asyncio.sleep(self.seconds_per_job)
            if job.state != "processing":
                return
            count = int(job.body.get("params", {}).get("n", 1))
            job.generations = [self._generation(job, index) for index in range(count)]
            job.state = "done"

    def _generation(self, job: _Request, index: int) -> dict[str, Any]:
        params = job.body.get("params", {})
        seed = int(params.get("seed") or 0) + index
        prompt = str(job.body["prompt"]).split("###")[0].strip()
        censored = "censorme" in prompt.lower() and job.body.get("censor_nsfw", True)
        out = io.BytesIO()
        width, height = int(params.get("width", 512)), int(params.get("height", 512))
        render_image("censored" if censored else prompt, seed, width, height).save(out, format="WEBP", method=0)
        name = f"{job.id}-{index}.webp"
        if job.body.get("r2", True):
            img = self.r2.put(name, out.getvalue(), "image/webp")
            if self.lose_images:
                self.r2.forget(name)
        else:
            img = base64.b64encode(out.getvalue()).decode()
        meta = [{"type": "censorship", "value": "nsfw"}] if censored else []
        return {
            "img": img, "seed": str(seed), "id": str(uuid.uuid4()), "censored": censored, "worker_id": "w1",
            "worker_name": "simulated worker", "model": job.body.get("models", ["?"])[0], "state": "ok",
            "gen_metadata": meta,
        }  # fmt: skip

    def _check_body(self, job: _Request) -> dict[str, Any]:
        waiting = [j for j in self.jobs.values() if j.state == "waiting"]
        position = waiting.index(job) + 1 if job in waiting else 0
        n = int(job.body.get("params", {}).get("n", 1))
        return {
            "finished": n if job.state == "done" else 0, "processing": n if job.state == "processing" else 0,
            "restarted": 0, "waiting": n if job.state == "waiting" else 0, "done": job.state == "done",
            "faulted": False, "wait_time": int(self.seconds_per_job * (position + 1)) + 1,
            "queue_position": position, "kudos": 12.0, "is_possible": self.possible and job.possible,
        }  # fmt: skip

    def _job(self, request: web.Request) -> _Request | None:
        return self.jobs.get(request.match_info["id"])

    async def _check(self, request: web.Request) -> web.Response:
        if self._limited("check", self.check_per_second, 1.0):
            return rc_error(
                429, "RateLimited", f"{self.check_per_second} per 1 second", self._retry_after("check", 1.0)
            )
        job = self._job(request)
        if job is None:
            return rc_error(404, "RequestNotFound", "Request not found")
        return web.json_response(self._check_body(job))

    async def _status(self, request: web.Request) -> web.Response:
        if self._limited("status", self.status_per_minute, 60.0):
            return rc_error(
                429, "RateLimited", f"{self.status_per_minute} per 1 minute", self._retry_after("status", 60.0)
            )
        job = self._job(request)
        if job is None:
            return rc_error(404, "RequestNotFound", "Request not found")
        return web.json_response({**self._check_body(job), "generations": job.generations, "shared": False})

    async def _delete(self, request: web.Request) -> web.Response:
        job = self._job(request)
        if job is None:
            return rc_error(404, "RequestNotFound", "Request not found")
        if job.state != "done":
            job.state = "cancelled"
        return web.json_response({**self._check_body(job), "generations": job.generations, "shared": False})

    async def _heartbeat(self, request: web.Request) -> web.Response:
        return web.json_response({"message": "OK", "version": "4.44.0"})

    async def _models(self, request: web.Request) -> web.Response:
        models = [{"name": n, "count": 3, "performance": 1.0, "queued": 0, "eta": 5, "type": "image"} for n in MODELS]
        return web.json_response(models)


async def serve(port: int, host: str = "127.0.0.1", seconds_per_job: float = 3.0) -> None:
    """Run until cancelled (`imagebridge simulate horde`)."""
    sim = HordeSimulator(seconds_per_job=seconds_per_job)
    log.info("AI Horde simulator on %s", await sim.start(host, port))
    try:
        await asyncio.Event().wait()
    finally:
        await sim.stop()
