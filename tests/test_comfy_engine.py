"""Issue 13 items 7 and 8 through the whole bot: the console command, the engine, the worker, the ComfyUI client
and the ComfyUI simulator."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from adapters.backends.comfyui import ComfyUIBackend
from bot.app import App, build_app
from bot.models import JobState
from bot.replies import Tone
from commands.dispatch import dispatch_text
from simulators.comfyui import ComfyUISimulator
from tests.conftest import invocation, make_settings
from tests.fakes import RecordingOutbound

pytestmark = pytest.mark.backends

WITHIN = 15.0


@dataclass
class Rig:
    app: App
    sim: ComfyUISimulator
    backend: ComfyUIBackend

    async def run(self, text: str) -> tuple[JobState, str]:
        reply = await dispatch_text(self.app.services, invocation(), text)
        assert reply is not None and reply.job_id and reply.tone is not Tone.ERROR, reply
        async with asyncio.timeout(WITHIN):
            await self.app.engine.finished_event(reply.job_id).wait()
        job = await self.app.services.store.get(reply.job_id)
        assert job is not None
        return job.state, job.error or ""


@pytest.fixture
async def rig(tmp_path: Path) -> AsyncIterator[Rig]:
    async with make_rig(tmp_path, job_timeout=0.5) as made:
        yield made


@asynccontextmanager
async def make_rig(tmp_path: Path, job_timeout: float, max_attempts: int = 1) -> AsyncIterator[Rig]:
    sim = ComfyUISimulator(seconds_per_step=0.02)
    url = await sim.start()
    preset = {"checkpoint": "sd_xl_base_1.0.safetensors", "steps": 4, "max_steps": 500, "base_resolution": 512}
    settings = make_settings(
        tmp_path / "data",
        backends={"comfy": {"kind": "comfyui", "url": url}},
        presets={"sdxl": {**preset, "backend": "comfy"}},
        limits={"job_timeout_seconds": job_timeout, "max_attempts": max_attempts, "retry_backoff_seconds": 0},
    )
    backend = ComfyUIBackend("comfy", url)
    app = await build_app(settings, [RecordingOutbound()], backends=[backend])
    await app.start()
    yield Rig(app, sim, backend)
    await app.stop()
    await backend.aclose()
    await sim.stop()


async def test_a_timed_out_job_stops_its_comfyui_prompt(rig: Rig) -> None:
    state, error = await rig.run("/imagine a slow lighthouse --preset sdxl --steps 500")
    assert state is JobState.FAILED and "took longer" in error, error
    prompt_id = next(r.body["prompt_id"] for r in rig.sim.requests if r.path == "/prompt")
    entry = await rig.sim.wait_for_history(prompt_id, timeout=5)  # 500 steps would take 10 s
    assert [kind for kind, _ in entry["status"]["messages"]][-1] == "execution_interrupted"


async def test_a_node_error_fails_the_job_and_keeps_the_backend(rig: Rig) -> None:
    worker = rig.app.engine.workers[0]
    for _ in range(worker.policy.max_consecutive_errors + 1):
        rig.sim.fail_node("VAEDecode", "RuntimeError", "expected input to have 4 channels, but got 16 channels")
        state, error = await rig.run("/imagine a lighthouse --preset sdxl")
        assert state is JobState.FAILED and "16 channels" in error and "VAEDecode" in error, error
    assert worker.healthy and worker.consecutive_errors == 0
    state, _ = await rig.run("/imagine a lighthouse --preset sdxl")
    assert state is JobState.SUCCEEDED


async def test_a_job_whose_connection_dropped_collects_its_prompt_instead_of_running_it_again(tmp_path: Path) -> None:
    async with make_rig(tmp_path, job_timeout=60) as rig:
        reply = await dispatch_text(rig.app.services, invocation(), "/imagine a lighthouse --preset sdxl --steps 40")
        assert reply is not None and reply.job_id
        async with asyncio.timeout(WITHIN):
            await rig.sim.started.wait()
        await rig.sim.drop_sockets()  # a proxy restart: the prompt runs on, the bot requeues the job
        async with asyncio.timeout(WITHIN):
            await rig.app.engine.finished_event(reply.job_id).wait()
        job = await rig.app.services.store.get(reply.job_id)
        assert job is not None and job.state is JobState.SUCCEEDED, job.error
        assert len([r for r in rig.sim.requests if r.path == "/prompt"]) == 1, "the prompt was not run again"


async def test_a_prompt_that_takes_comfyui_down_each_time_fails_after_the_cap(tmp_path: Path) -> None:
    async with make_rig(tmp_path, job_timeout=60, max_attempts=2) as rig:
        rig.sim.crash_texts.append("poison")  # ComfyUI dies running it, comes back with an empty queue and history
        state, error = await rig.run("/imagine a poison apple --preset sdxl")
        assert state is JobState.FAILED and "went away while running this job" in error, error
        assert rig.sim.crashes == 2, "run exactly max_attempts times"
        state, _ = await rig.run("/imagine a red apple --preset sdxl")
        assert state is JobState.SUCCEEDED
