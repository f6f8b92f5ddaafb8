"""An AI Horde stand-in (backends.md §7): 202 + id, /check and /status, DELETE, `{message, rc}` errors,
anonymous limits (KudosUpfront, TooManyPrompts), per-endpoint rate limits and R2-style image URLs.
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

from simulators.images import render_image
from simulators.serving import start_app

log = logging.getLogger(__name__)

ANONYMOUS = "0000000000"
MODELS = ["AlbedoBase XL (SDXL)", "Deliberate", "stable_diffusion"]


def rc_error(status: int, rc: str, message: str, retry_after: float | None = None) -> web.Response:
    headers = {"Retry-After": f"{retry_after:g}"} if retry_after is not None else None
    return web.json_response({"message": message, "rc": rc}, status=status, headers=headers)


@dataclass
class _Request:
    id: str
    body: dict[str, Any]
    key: str
    state: str = "waiting"  # waiting | processing | done | cancelled
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
    url: str = ""

    def __post_init__(self) -> None:
        self.jobs: dict[str, _Request] = {}
        self.r2: dict[str, bytes] = {}
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
                web.get("/r2/{name}", self._image),
            ]
        )
        self._runner, self.url = await start_app(app, host, port)
        return f"{self.url}/api/v2"

    async def stop(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.wait(self._tasks)
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
        key = request.headers.get("apikey", ANONYMOUS)
        if key != ANONYMOUS and key not in self.keys:
            return rc_error(401, "InvalidAPIKey", "No user matching sent API Key. Have you remembered to register?")
        if self._limited("async", 2, 1.0):
            return rc_error(429, "RateLimited", "2 per 1 second", retry_after=self._retry_after("async", 1.0))
        body = await request.json()
        problem = self._validate(body, key)
        if problem is not None:
            return problem
        job = _Request(id=str(uuid.uuid4()), body=body, key=key)
        self.jobs[job.id] = job
        if self.workers > 0:
            task = asyncio.get_running_loop().create_task(self._run(job))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        answer: dict[str, Any] = {"id": job.id, "kudos": 12.0}
        if self.workers == 0:
            answer["warnings"] = [{"code": "NoAvailableWorker", "message": "No workers are currently online."}]
        return web.json_response(answer, status=202)

    def _validate(self, body: dict[str, Any], key: str) -> web.Response | None:
        params = body.get("params") or {}
        width, height, steps = int(params.get("width", 512)), int(params.get("height", 512)), params.get("steps", 30)
        if any(v % 64 or not 64 <= v <= 3072 for v in (width, height)):
            return rc_error(400, "InvalidSize", "Invalid size. The image dimensions have to be multiples of 64.")
        if not 1 <= int(steps) <= 500:
            return rc_error(400, "TooManySteps", "Too many steps requested.")
        if not str(params.get("sampler_name", "k_euler_a")).startswith(("k_", "DDIM", "lcm")):
            return rc_error(400, "UnsupportedSampler", "This sampler is not supported in this mode.")
        if key == ANONYMOUS:
            if (width * height > 1024 * 1024 or int(steps) > 50) and not body.get("allow_downgrade"):
                return rc_error(403, "KudosUpfront", "Due to heavy demand, this request requires upfront kudos.")
            active = sum(1 for j in self.jobs.values() if j.key == ANONYMOUS and j.state in ("waiting", "processing"))
            if active >= self.anonymous_concurrency:
                return rc_error(429, "TooManyPrompts", "Too many anonymous requests waiting. Please wait.")
        return None

    async def _run(self, job: _Request) -> None:
        async with self._slots:
            if job.state != "waiting":
                return
            job.state = "processing"
            self.processing.set()
            await asyncio.sleep(self.seconds_per_job)
            if job.state != "processing":
                return
            job.generations = [self._generation(job, index) for index in range(int(job.body["params"].get("n", 1)))]
            job.state = "done"

    def _generation(self, job: _Request, index: int) -> dict[str, Any]:
        params = job.body["params"]
        seed = int(params.get("seed") or 0) + index
        prompt = str(job.body["prompt"]).split("###")[0].strip()
        censored = "censorme" in prompt.lower() and job.body.get("censor_nsfw", True)
        out = io.BytesIO()
        colour = render_image("censored" if censored else prompt, seed, 64, 64)
        colour.save(out, format="WEBP")
        name = f"{job.id}-{index}.webp"
        self.r2[name] = out.getvalue()
        img = f"{self.url}/r2/{name}" if job.body.get("r2", True) else base64.b64encode(out.getvalue()).decode()
        meta = [{"type": "censorship", "value": "nsfw"}] if censored else []
        return {
            "img": img, "seed": str(seed), "id": str(uuid.uuid4()), "censored": censored, "worker_id": "w1",
            "worker_name": "simulated worker", "model": job.body.get("models", ["?"])[0], "state": "ok",
            "gen_metadata": meta,
        }  # fmt: skip

    def _check_body(self, job: _Request) -> dict[str, Any]:
        waiting = [j for j in self.jobs.values() if j.state == "waiting"]
        position = waiting.index(job) + 1 if job in waiting else 0
        n = int(job.body["params"].get("n", 1))
        return {
            "finished": n if job.state == "done" else 0, "processing": n if job.state == "processing" else 0,
            "restarted": 0, "waiting": n if job.state == "waiting" else 0, "done": job.state == "done",
            "faulted": False, "wait_time": int(self.seconds_per_job * (position + 1)) + 1,
            "queue_position": position, "kudos": 12.0, "is_possible": self.possible,
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

    async def _image(self, request: web.Request) -> web.Response:
        data = self.r2.get(request.match_info["name"])
        return web.Response(body=data, content_type="image/webp") if data else web.Response(status=404)


async def serve(port: int, host: str = "127.0.0.1", seconds_per_job: float = 3.0) -> None:
    """Run until cancelled (`imagebridge simulate horde`)."""
    sim = HordeSimulator(seconds_per_job=seconds_per_job)
    log.info("AI Horde simulator on %s", await sim.start(host, port))
    try:
        await asyncio.Event().wait()
    finally:
        await sim.stop()
