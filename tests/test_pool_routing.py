"""Routing by inventory: three real clients against three simulators that each have different models.

Forge has Flux and SDXL, A1111 has SD 1.5 only, ComfyUI has SDXL. A real WebUI answers a txt2img whose
checkpoint it lacks with a 200 and an image from the model it has loaded, so a misrouted job looks like a
success: the count comes from the simulators' own request logs, not from job states.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from bot.app import App, build_app
from bot.app_check import run_check
from bot.models import JobState
from bot.pool import check
from commands.dispatch import dispatch_text
from simulators.a1111 import A1111Simulator
from simulators.a1111_catalog import CheckpointCatalog
from simulators.comfyui import ComfyUISimulator
from tests.conftest import invocation, make_settings
from tests.fakes import RecordingOutbound

pytestmark = pytest.mark.backends

SD15 = "v1-5-pruned-emaonly.safetensors [6ce0161689]"
SDXL = "sd_xl_base_1.0.safetensors [31e35c80fc]"
FLUX = "flux1-dev-bnb-nf4-v2.safetensors [f0770152c8]"
SMALL = {"base_resolution": 256}
PRESETS: dict[str, dict[str, Any]] = {
    "sd15": SMALL,
    "sdxl": SMALL,
    "flux": SMALL,
    "sdxl_comfy": {**SMALL, "backend": "comfyui", "checkpoint": "sd_xl_base_1.0.safetensors"},
    "sd15_comfy": {**SMALL, "backend": "comfyui", "checkpoint": "v1-5-pruned-emaonly.safetensors"},
    "sd21": {**SMALL, "checkpoint": "v2-1_768-ema-pruned.safetensors"},
}
RUNNABLE = ["sd15", "sdxl", "flux", "sdxl_comfy"]
REFUSED = ["sd15_comfy", "sd21"]


@dataclass
class Stand:
    app: App
    outbound: RecordingOutbound
    forge: A1111Simulator
    a1111: A1111Simulator
    comfy: ComfyUISimulator
    settings_overrides: dict[str, Any]


@pytest.fixture
async def stand(tmp_path: Path) -> AsyncIterator[Stand]:
    forge = A1111Simulator(flavour="forge", checkpoints=[FLUX, SDXL], model_load_seconds=0.01)
    a1111 = A1111Simulator(flavour="a1111", checkpoints=[SD15], model_load_seconds=0.01)
    comfy = ComfyUISimulator(seconds_per_step=0.002, checkpoints=["sd_xl_base_1.0.safetensors"])
    backends = {
        "local": {"enabled": False},  # the example config's backend
        "forge": {"kind": "forge", "url": await forge.start(), "poll_interval_seconds": 0.05},
        "a1111": {"kind": "a1111", "url": await a1111.start(), "poll_interval_seconds": 0.05},
        "comfy": {"kind": "comfyui", "url": await comfy.start()},
    }
    overrides: dict[str, Any] = {"backends": backends, "presets": PRESETS, "quota": {"enabled": False}}
    outbound = RecordingOutbound()
    app = await build_app(make_settings(tmp_path / "data", **overrides), [outbound])
    await app.start()
    for worker in app.engine.workers:  # the check each worker runs as it starts, done before the first command
        await check(worker)
    yield Stand(app, outbound, forge, a1111, comfy, overrides)
    await app.stop()
    for sim in (forge, a1111, comfy):
        await sim.stop()


def webui_misroutes(sim: A1111Simulator) -> tuple[int, int]:
    """(generations received, generations the server could not run as asked), from its request log."""
    received = bad = 0
    for request in sim.requests:
        if request.method != "POST" or request.path not in ("/sdapi/v1/txt2img", "/sdapi/v1/img2img"):
            continue
        received += 1
        overrides = (request.json or {}).get("override_settings") or {}
        forge_only = "forge_additional_modules" in overrides or "distilled_cfg_scale" in (request.json or {})
        if sim.catalog.find(overrides.get("sd_model_checkpoint")) is None or (forge_only and sim.flavour != "forge"):
            bad += 1
    return received, bad


def comfy_misroutes(sim: ComfyUISimulator) -> tuple[int, int]:
    received = bad = 0
    for request in sim.requests:
        if request.method != "POST" or request.path not in ("/prompt", "/api/prompt"):
            continue
        received += 1
        nodes = (request.body or {}).get("prompt", {}).values()
        wanted = [n["inputs"]["ckpt_name"] for n in nodes if n.get("class_type") == "CheckpointLoaderSimple"]
        bad += int(any(name not in sim.checkpoints for name in wanted))
    return received, bad


async def test_sixty_mixed_jobs_none_sent_where_they_cannot_run(stand: Stand) -> None:
    presets = RUNNABLE + REFUSED
    accepted: list[str] = []
    refusals: list[str] = []
    for i in range(60):
        preset = presets[i % len(presets)]
        text = f"/imagine lighthouse {i} --preset {preset} --steps 3"
        reply = await dispatch_text(stand.app.services, invocation(user=f"u{i % 5}", server=f"s{i % 2}"), text)
        assert reply is not None
        if reply.job_id:
            accepted.append(reply.job_id)
        else:
            refusals.append(reply.text)
    async with asyncio.timeout(60):
        for job_id in accepted:
            await stand.app.engine.finished_event(job_id).wait()

    logs = {
        "forge": webui_misroutes(stand.forge),
        "a1111": webui_misroutes(stand.a1111),
        "comfy": comfy_misroutes(stand.comfy),
    }
    assert sum(bad for _, bad in logs.values()) == 0, logs
    assert all(received > 0 for received, _ in logs.values()), logs
    assert sum(received for received, _ in logs.values()) == len(accepted) == 40
    for job_id in accepted:
        job = await stand.app.services.store.get(job_id)
        assert job is not None and job.state is JobState.SUCCEEDED, (job_id, job and job.error)
    # What no backend can run is refused at /imagine, with the reason, and nothing is stored.
    assert len(refusals) == 20
    assert all("nothing was queued or charged" in text for text in refusals)
    assert any("v1-5-pruned-emaonly.safetensors is missing" in text for text in refusals)
    assert any("v2-1_768-ema-pruned.safetensors is missing" in text for text in refusals)
    assert len(await stand.app.services.store.in_states(list(JobState))) == 40


async def test_flux_never_goes_to_a1111_even_when_forge_is_busy(stand: Stand) -> None:
    stand.forge.seconds_per_step = 0.05
    jobs = []
    for i in range(4):
        reply = await dispatch_text(stand.app.services, invocation(user=f"u{i}"), f"/imagine x{i} --preset flux")
        assert reply is not None and reply.job_id
        jobs.append(reply.job_id)
    async with asyncio.timeout(30):
        for job_id in jobs:
            await stand.app.engine.finished_event(job_id).wait()
    assert webui_misroutes(stand.a1111) == (0, 0)
    assert webui_misroutes(stand.forge) == (4, 0)


async def test_check_prints_the_preset_by_backend_table(stand: Stand, capsys: pytest.CaptureFixture[str]) -> None:
    settings = make_settings(stand.app.settings.data_dir, **stand.settings_overrides)
    status = await run_check(settings)
    out = capsys.readouterr().out
    rows = {line.split()[0]: line.split()[1:] for line in out.splitlines() if line.split(" ", 1)[0] in PRESETS}
    assert out.index("preset × backend") > 0
    # columns in config order: forge, a1111, comfy
    assert rows["sd15"] == ["no", "yes", "no"]
    assert rows["sdxl"] == ["yes", "no", "no"]
    assert rows["flux"] == ["yes", "no", "no"]
    assert rows["sdxl_comfy"] == ["no", "no", "yes"]
    assert rows["sd21"] == ["no", "no", "no"]
    assert "sdxl on a1111: the checkpoint sd_xl_base_1.0.safetensors is missing" in out
    assert "flux on a1111: the preset is for forge backends, this one is a1111" in out
    assert "sd15_comfy on comfy: the checkpoint v1-5-pruned-emaonly.safetensors is missing" in out
    assert "no backend can run: sd15_comfy, sd21" in out
    assert status == 1


async def test_queued_jobs_no_backend_can_run_any_more_fail_with_the_reason(stand: Stand) -> None:
    stand.forge.seconds_per_step = 0.05
    running = await dispatch_text(stand.app.services, invocation(), "/imagine a fox --preset flux --steps 20")
    assert running is not None and running.job_id
    async with asyncio.timeout(10):
        await stand.forge.running.wait()
    waiting = await dispatch_text(stand.app.services, invocation(user="u2"), "/imagine an owl --preset sdxl")
    assert waiting is not None and waiting.job_id
    stand.forge.catalog = CheckpointCatalog([FLUX])  # SDXL deleted on the server; the next check sees it
    forge = next(worker for worker in stand.app.engine.workers if worker.backend.name == "forge")
    await check(forge)
    async with asyncio.timeout(10):
        await stand.app.engine.finished_event(waiting.job_id).wait()
    job = await stand.app.services.store.get(waiting.job_id)
    assert job is not None and job.state is JobState.FAILED
    assert "any more" in (job.error or "") and "sd_xl_base_1.0.safetensors is missing" in (job.error or "")
    async with asyncio.timeout(20):
        await stand.app.engine.finished_event(running.job_id).wait()
    assert webui_misroutes(stand.forge) == (1, 0)


async def test_a_checkpoint_gone_since_the_last_check_is_caught_not_delivered(stand: Stand) -> None:
    stand.forge.catalog = CheckpointCatalog([FLUX])  # removed after the check: the inventory still lists SDXL
    reply = await dispatch_text(stand.app.services, invocation(), "/imagine an owl --preset sdxl --steps 2")
    assert reply is not None and reply.job_id
    async with asyncio.timeout(20):
        await stand.app.engine.finished_event(reply.job_id).wait()
    assert webui_misroutes(stand.forge) == (1, 1)  # the WebUI answered 200 with the loaded Flux model's image
    job = await stand.app.services.store.get(reply.job_id)
    assert job is not None and job.state is JobState.FAILED and "instead of" in (job.error or "")
    assert await stand.app.services.store.images(reply.job_id) == []
    forge = next(worker for worker in stand.app.engine.workers if worker.backend.name == "forge")
    assert forge.inventory is not None and forge.inventory.checkpoints == frozenset({FLUX})  # read again
