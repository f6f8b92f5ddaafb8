"""Backend faults: every way an A1111-compatible backend misbehaves, through the real A1111Backend and engine.

Two backends serve two presets: `flaky` (the one that misbehaves) and `steady` (a healthy A1111 simulator).
For each fault: the job is retried or failed with a message a user understands, the quota is refunded when
nothing was delivered, a job of another server on the steady backend still runs, and the flaky worker
survives (a following job on it succeeds).
"""

from __future__ import annotations

import asyncio
import base64
import logging
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from adapters.backends.a1111 import A1111Backend
from bot.app import App, build_app
from bot.models import Job, JobState
from bot.replies import Reply, Tone
from commands.dispatch import dispatch_text
from simulators.a1111 import A1111Simulator
from tests.conftest import invocation, make_settings
from tests.fakes import RecordingOutbound, png

pytestmark = pytest.mark.reliability
log = logging.getLogger(__name__)

CHECKPOINT = "v1-5-pruned-emaonly.safetensors"
TXT2IMG = "/sdapi/v1/txt2img"
WITHIN = 15.0
FIGURES: Counter[str] = Counter()


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


@dataclass
class FaultServer:
    """A tiny A1111 look-alike whose txt2img answers whatever `mode` says (health endpoints always answer)."""

    mode: str = "ok"
    url: str = ""
    posts: int = 0
    release: asyncio.Event = field(default_factory=asyncio.Event)
    runner: web.AppRunner | None = None

    async def start(self, port: int = 0) -> str:
        app = web.Application()
        app.router.add_get("/sdapi/v1/sd-models", self._models)
        app.router.add_get("/sdapi/v1/options", self._options)
        app.router.add_get("/sdapi/v1/progress", self._progress)
        app.router.add_post("/sdapi/v1/interrupt", self._interrupt)
        app.router.add_post(TXT2IMG, self._txt2img)
        self.runner = web.AppRunner(app, shutdown_timeout=0.05, access_log=None)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", port)
        await site.start()
        bound = next(s for s in self.runner.addresses if isinstance(s, tuple))[1]
        self.url = f"http://127.0.0.1:{bound}"
        return self.url

    async def stop(self) -> None:
        self.release.set()
        runner, self.runner = self.runner, None
        if runner is not None:
            await runner.cleanup()

    async def _models(self, request: web.Request) -> web.Response:
        return web.json_response([{"title": f"{CHECKPOINT} [6ce0161689]", "model_name": "v1-5"}])

    async def _options(self, request: web.Request) -> web.Response:
        return web.json_response({"sd_model_checkpoint": f"{CHECKPOINT} [6ce0161689]"})

    async def _progress(self, request: web.Request) -> web.Response:
        return web.json_response({"progress": 0.0, "state": {"job": ""}, "current_image": None})

    async def _interrupt(self, request: web.Request) -> web.Response:
        return web.json_response({})

    async def _txt2img(self, request: web.Request) -> web.StreamResponse:
        await request.read()
        self.posts += 1
        mode = self.mode
        if mode == "hang":
            await self.release.wait()
        if mode == "drop":  # the process dies with the request in flight
            self.mode = "ok"
            assert request.transport is not None
            request.transport.close()
            return web.Response(status=200)
        bodies: dict[str, Any] = {
            "ok": {"images": [b64(png())], "info": "{}"},
            "bad_base64": {"images": ["%%%not base64%%%"], "info": "{}"},
            "truncated": {"images": [b64(png()[:60])], "info": "{}"},
            "black": {"images": [b64(png(colour=(0, 0, 0)))], "info": "{}"},
            "no_images": {"images": [], "info": "{}"},
            "no_list": {"info": "{}"},
        }
        if mode == "garbage":
            return web.Response(text="<html>Bad gateway</html>{", content_type="application/json")
        return web.json_response(bodies[mode])


@dataclass
class WatchedOutbound(RecordingOutbound):
    """RecordingOutbound that lets a test wait for a status edit."""

    changed: asyncio.Condition = field(default_factory=asyncio.Condition)

    async def update_status(self, job: Job, reply: Reply) -> None:
        await super().update_status(job, reply)
        async with self.changed:
            self.changed.notify_all()

    async def wait_status(self, job_id: str, text: str) -> None:
        async with asyncio.timeout(WITHIN), self.changed:
            await self.changed.wait_for(lambda: any(j == job_id and text in r.text for j, r in self.statuses))


@dataclass
class Rig:
    """The app with a flaky and a steady backend, and the servers behind them."""

    app: App
    outbound: WatchedOutbound
    fault: FaultServer
    sim: A1111Simulator
    steady: A1111Simulator
    flaky: A1111Backend

    async def submit(self, preset: str, server: str = "s1") -> str:
        reply = await dispatch_text(
            self.app.services, invocation(server=server), f"/imagine a lighthouse --preset {preset} --steps 4"
        )
        assert reply is not None and reply.job_id and reply.tone is not Tone.ERROR, reply
        return reply.job_id

    async def finished(self, job_id: str) -> tuple[JobState, str, str]:
        async with asyncio.timeout(WITHIN):
            await self.app.engine.finished_event(job_id).wait()
        job = await self.app.services.store.get(job_id)
        assert job is not None
        row = await self.app.db.fetchone("SELECT state FROM quota_ledger WHERE job_id = ?", (job_id,))
        return job.state, job.error or "", str(row[0]) if row else ""


async def make_rig(tmp_path: Path, target: str, client_timeout: float) -> Rig:
    fault = FaultServer()
    fault_url = await fault.start()
    sim = A1111Simulator(seconds_per_step=0.01, model_load_seconds=0.01)
    sim_url = await sim.start()
    steady = A1111Simulator(seconds_per_step=0.01, model_load_seconds=0.01)
    steady_url = await steady.start()
    flaky_url = fault_url if target == "fault" else sim_url
    preset = {"checkpoint": CHECKPOINT, "steps": 4, "max_steps": 50, "base_resolution": 512, "max_images": 2}
    settings = make_settings(
        tmp_path / "data",
        backends={"flaky": {"kind": "a1111", "url": flaky_url}, "steady": {"kind": "forge", "url": steady_url}},
        presets={"p_flaky": {**preset, "backend": "flaky"}, "p_steady": {**preset, "backend": "steady"}},
        limits={"job_timeout_seconds": 1, "max_attempts": 2, "retry_backoff_seconds": 0},
        quota={"enabled": True, "user_daily": 1000.0, "server_daily": 1000.0},
    )
    flaky = A1111Backend("flaky", flaky_url, timeout_seconds=client_timeout, poll_interval_seconds=0.05)
    healthy = A1111Backend("steady", steady_url, kind="forge", poll_interval_seconds=0.05)
    outbound = WatchedOutbound()
    app = await build_app(settings, [outbound], backends=[flaky, healthy])
    await app.start()
    return Rig(app=app, outbound=outbound, fault=fault, sim=sim, steady=steady, flaky=flaky)


async def restart_sim(rig: Rig) -> None:
    """The simulator dies mid-job and comes back on the same port."""
    await rig.sim.wait_for_step(2, WITHIN)
    port = int(rig.sim.url.rsplit(":", 1)[1])
    await rig.sim.stop()
    rig.sim = A1111Simulator(seconds_per_step=0.01, model_load_seconds=0.01)
    await rig.sim.start(port=port)


@dataclass(frozen=True)
class Fault:
    kind: str
    target: str  # "fault" (FaultServer) or "sim" (A1111Simulator)
    mode: str = "ok"
    fail: tuple[int, Any, int] | None = None  # (status, body, times) for A1111Simulator.fail_next
    hangs: int = 0
    client_timeout: float = 30.0
    outcome: JobState = JobState.FAILED
    message: str = ""
    during: Callable[[Rig], Awaitable[None]] | None = None


A1111_500 = {"error": "RuntimeError", "detail": "", "body": "", "errors": "Sizes of tensors must match"}
FORGE_500 = {"error": "OutOfMemoryError", "detail": "", "body": "", "message": "CUDA out of memory. Tried 2 GiB"}
FASTAPI_422 = {"detail": [{"loc": ["body", "steps"], "msg": "value is not a valid integer", "type": "int"}]}

FAULTS = [
    Fault("read timeout", "fault", mode="hang", client_timeout=0.3, message="stopped answering in the middle"),
    Fault("hang past job timeout", "sim", hangs=2, message="took longer than 1 s"),
    Fault("500 A1111 errors body", "sim", fail=(500, A1111_500, 2), message="The backend failed: Sizes of tensors"),
    Fault("500 Forge message body", "sim", fail=(500, FORGE_500, 1), message="GPU ran out of memory"),
    Fault("422 FastAPI detail", "sim", fail=(422, FASTAPI_422, 1), message="rejected the request: steps: value is"),
    Fault("500 once then fine", "sim", fail=(500, A1111_500, 1), outcome=JobState.SUCCEEDED),
    Fault("503 unavailable", "sim", fail=(503, {"detail": "Service Unavailable"}, 1), outcome=JobState.SUCCEEDED),
    Fault("200 garbage JSON", "fault", mode="garbage", message="something that is not JSON"),
    Fault("invalid base64", "fault", mode="bad_base64", message="not valid base64"),
    Fault("truncated image", "fault", mode="truncated", message="not a readable image"),
    Fault("all-black image", "fault", mode="black", message="all-black image"),
    Fault("200 with no images", "fault", mode="no_images", message="sent back no images"),
    Fault("200 without images list", "fault", mode="no_list", message="no images list"),
    Fault("connection dropped mid-job", "fault", mode="drop", outcome=JobState.SUCCEEDED),
    Fault("backend process dies mid-job", "sim", outcome=JobState.SUCCEEDED, during=restart_sim),
]


@pytest.fixture(scope="module", autouse=True)
def figures() -> Iterator[None]:
    yield
    log.warning("backend fault kinds: tried=%d survived=%d", FIGURES["tried"], FIGURES["survived"])


@pytest.fixture
async def rig_for(tmp_path: Path) -> AsyncIterator[Callable[[Fault], Awaitable[Rig]]]:
    rigs: list[Rig] = []

    async def build(fault: Fault) -> Rig:
        rig = await make_rig(tmp_path, fault.target, fault.client_timeout)
        rigs.append(rig)
        return rig

    yield build
    for rig in rigs:
        await rig.app.stop()
        await rig.fault.stop()
        await rig.sim.stop()
        await rig.steady.stop()


@pytest.mark.parametrize("fault", FAULTS, ids=[f.kind for f in FAULTS])
async def test_backend_fault_is_survived(fault: Fault, rig_for: Callable[[Fault], Awaitable[Rig]]) -> None:
    FIGURES["tried"] += 1
    rig = await rig_for(fault)
    if fault.during is not None:
        rig.sim.seconds_per_step = 0.1
    rig.fault.mode = fault.mode
    if fault.fail is not None:
        rig.sim.fail_next(TXT2IMG, fault.fail[0], fault.fail[1], times=fault.fail[2])
    for _ in range(fault.hangs):
        rig.sim.hang_next(TXT2IMG)

    job_id = await rig.submit("p_flaky")
    other = await rig.submit("p_steady", server="s2")
    if fault.during is not None:
        await fault.during(rig)
    assert (await rig.finished(other))[0] is JobState.SUCCEEDED, "another server's job kept flowing"
    state, error, ledger = await rig.finished(job_id)

    assert state is fault.outcome, (state, error)
    if fault.outcome is JobState.FAILED:
        assert fault.message in error, error
        assert "Traceback" not in error and "httpx" not in error
        assert ledger == "refunded", "nothing was delivered, so nothing is charged"
        delivered = dict(rig.outbound.deliveries)[job_id]
        assert "Nothing was charged" in delivered.text and not delivered.images
    else:
        assert ledger == "settled"
        assert dict(rig.outbound.deliveries)[job_id].images

    rig.fault.mode = "ok"
    rig.sim.seconds_per_step = 0.01
    after, _, _ = await rig.finished(await rig.submit("p_flaky"))
    assert after is JobState.SUCCEEDED, "the flaky backend's worker survived"
    FIGURES["survived"] += 1


async def test_connection_refused_waits_and_resumes(rig_for: Callable[[Fault], Awaitable[Rig]]) -> None:
    FIGURES["tried"] += 1
    rig = await rig_for(Fault("connection refused", "fault"))
    warm, _, _ = await rig.finished(await rig.submit("p_flaky"))  # the flaky worker is in rotation
    assert warm is JobState.SUCCEEDED
    port = int(rig.fault.url.rsplit(":", 1)[1])
    await rig.fault.stop()
    job_id = await rig.submit("p_flaky")
    other = await rig.submit("p_steady", server="s2")
    assert (await rig.finished(other))[0] is JobState.SUCCEEDED
    await rig.outbound.wait_status(job_id, "cannot be reached")
    job = await rig.app.services.store.get(job_id)
    assert job is not None and job.state is JobState.QUEUED, "the job waits for its backend, it is not lost"
    rig.fault = FaultServer(mode="ok")
    await rig.fault.start(port=port)
    state, _, ledger = await rig.finished(job_id)
    assert state is JobState.SUCCEEDED and ledger == "settled"
    FIGURES["survived"] += 1
