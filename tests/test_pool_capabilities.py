"""Capabilities decide what is offered and accepted; black images are retried once elsewhere; a requeued job
keeps its place. Real clients against simulators (and the engine's own queue), never a ready-made job."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from bot.app import App, build_app
from bot.errors import BackendError
from bot.models import JobState
from bot.pool import check
from bot.replies import Reply
from commands.dispatch import dispatch_button, dispatch_text
from simulators.a1111 import A1111Simulator
from simulators.comfyui import ComfyUISimulator
from tests.conftest import AppFactory, invocation, make_settings
from tests.fakes import FakeBackend, RecordingOutbound, png

pytestmark = pytest.mark.backends

FLUX = "flux1-dev-bnb-nf4-v2.safetensors [f0770152c8]"
SMALL = {"base_resolution": 256}
Stand = Callable[..., Awaitable[tuple[App, RecordingOutbound]]]


@pytest.fixture
async def stand(tmp_path: Path) -> AsyncIterator[Stand]:
    """An app whose backends are configured by URL (the real clients), plus cleanup."""
    apps: list[App] = []

    async def factory(backends: dict[str, dict[str, Any]], presets: dict[str, Any]) -> tuple[App, RecordingOutbound]:
        overrides = {"backends": {"local": {"enabled": False}, **backends}, "presets": presets}
        outbound = RecordingOutbound()
        app = await build_app(make_settings(tmp_path / "data", **overrides), [outbound])
        await app.start()
        for worker in app.engine.workers:  # the check each worker runs as it starts
            await check(worker)
        apps.append(app)
        return app, outbound

    yield factory
    for app in apps:
        await app.stop()


@pytest.fixture
async def comfy() -> AsyncIterator[ComfyUISimulator]:
    sim = ComfyUISimulator(seconds_per_step=0.002, checkpoints=["sd_xl_base_1.0.safetensors"])
    await sim.start()
    yield sim
    await sim.stop()


COMFY_PRESET = {"sdxl": {**SMALL, "backend": "comfyui", "checkpoint": "sd_xl_base_1.0.safetensors"}}


async def done(app: App, reply: Reply | None) -> str:
    assert reply is not None and reply.job_id, reply
    async with asyncio.timeout(20):
        await app.engine.finished_event(reply.job_id).wait()
    return reply.job_id


def button_ids(reply: Reply) -> set[str]:
    return {button.id for row in reply.buttons for button in row}


async def jobs_stored(app: App) -> int:
    return len(await app.services.store.in_states(list(JobState)))


async def test_comfyui_results_offer_no_upscale_and_refuse_it(stand: Stand, comfy: ComfyUISimulator) -> None:
    app, outbound = await stand({"comfy": {"kind": "comfyui", "url": comfy.url}}, COMFY_PRESET)
    job_id = await done(app, await dispatch_text(app.services, invocation(), "/imagine a fox --steps 2 --n 2"))
    ids = button_ids(outbound.deliveries[0][1])
    assert {f"reroll:{job_id}", f"info:{job_id}", f"vary:{job_id}:1"} <= ids  # ComfyUI varies by re-sampling
    assert not any(i.startswith("upscale:") for i in ids), ids
    prompts = len([r for r in comfy.requests if r.path == "/prompt"])
    refused = await dispatch_button(app.services, invocation(), f"upscale:{job_id}:0")  # an old message's button
    assert refused.job_id is None and "nothing was queued or charged" in refused.text, refused.text
    assert "cannot upscale" in refused.text
    assert await jobs_stored(app) == 1
    assert len([r for r in comfy.requests if r.path == "/prompt"]) == prompts


async def test_an_attached_image_on_a_txt2img_only_backend_is_refused_at_once(
    stand: Stand, comfy: ComfyUISimulator
) -> None:
    backends = {"comfy": {"kind": "comfyui", "url": comfy.url, "workflow": "sd_txt2img"}}
    app, _ = await stand(backends, COMFY_PRESET)
    reply = await dispatch_text(app.services, invocation(source_image=png(128, 128)), "/imagine a fox")
    assert reply is not None and reply.job_id is None
    assert "cannot start from an image" in reply.text and "nothing was queued" in reply.text
    assert await jobs_stored(app) == 0
    assert not any(r.path in ("/prompt", "/upload/image") for r in comfy.requests)


async def test_black_image_is_retried_once_on_another_backend_then_explained(stand: Stand) -> None:
    sims = [A1111Simulator(flavour="forge", checkpoints=[FLUX], model_load_seconds=0.0) for _ in range(2)]
    backends = {f"gpu{i}": {"kind": "forge", "url": await sim.start()} for i, sim in enumerate(sims)}
    try:
        # Karras instead of Simple: Forge decodes Flux to an all-black image.
        app, outbound = await stand(backends, {"flux": {**SMALL, "scheduler": "Karras"}})
        job_id = await done(app, await dispatch_text(app.services, invocation(), "/imagine a fox --preset flux"))
    finally:
        for sim in sims:
            await sim.stop()
    sent = [[r.json for r in sim.requests if r.path == "/sdapi/v1/txt2img"] for sim in sims]
    assert [len(requests) for requests in sent] == [1, 1]  # once each: never again where it came out black
    job = await app.services.store.get(job_id)
    assert job is not None and job.state is JobState.FAILED and "Simple" in (job.error or "")
    assert outbound.delivered_ids() == [job_id]
    assert any("all black" in reply.text and "trying once more on" in reply.text for _, reply in outbound.statuses)


async def test_black_image_on_the_only_backend_is_retried_once_with_another_seed(stand: Stand) -> None:
    sim = A1111Simulator(flavour="forge", checkpoints=[FLUX], model_load_seconds=0.0)
    try:
        app, _ = await stand({"gpu": {"kind": "forge", "url": await sim.start()}}, {"flux": {**SMALL, "cfg_scale": 7}})
        job_id = await done(app, await dispatch_text(app.services, invocation(), "/imagine a fox --preset flux"))
    finally:
        await sim.stop()
    seeds = [r.json["seed"] for r in sim.requests if r.path == "/sdapi/v1/txt2img"]
    assert len(seeds) == 2 and seeds[0] != seeds[1]
    job = await app.services.store.get(job_id)
    assert job is not None and job.state is JobState.FAILED


async def test_a_requeued_job_keeps_its_place_ahead_of_its_users_later_jobs(app_factory: AppFactory) -> None:
    backend = FakeBackend(hold=True, failures=[BackendError("the GPU hiccuped", retryable=True)])
    app = await app_factory(backend=backend)
    first = await dispatch_text(app.services, invocation(), "/imagine first")
    assert first is not None and first.job_id
    async with asyncio.timeout(5):
        await backend.started.wait()
    later = [await dispatch_text(app.services, invocation(), f"/imagine later {i}") for i in range(2)]
    other = await dispatch_text(app.services, invocation(user="u2"), "/imagine someone else")
    backend.release.set()  # the first attempt fails retryably and goes back to the queue
    for reply in [*later, other]:
        await done(app, reply)
    await done(app, first)
    order = [job_id for job_id, _ in backend.calls]
    assert order[:2] == [first.job_id, first.job_id], order


async def test_upscale_waits_for_the_backend_that_has_the_upscaler(stand: Stand) -> None:
    sdxl = "sd_xl_base_1.0.safetensors [31e35c80fc]"
    lean = A1111Simulator(flavour="forge", checkpoints=[sdxl], upscalers=["DAT x2"], model_load_seconds=0.0)
    full = A1111Simulator(flavour="forge", checkpoints=["v1-5-pruned-emaonly.safetensors [6ce0161689]", sdxl])
    backends = {
        "lean": {"kind": "forge", "url": await lean.start()},
        "full": {"kind": "forge", "url": await full.start()},
    }
    try:
        app, _ = await stand(backends, {"sdxl": SMALL, "sd15": SMALL})
        made = await done(
            app, await dispatch_text(app.services, invocation(), "/imagine a fox --preset sdxl --steps 2")
        )
        full.seconds_per_step = 0.05
        busy = await dispatch_text(app.services, invocation(user="u2"), "/imagine a hen --preset sd15 --steps 20")
        async with asyncio.timeout(10):
            await full.running.wait()  # only `full` has SD 1.5; `lean` is idle when U is pressed
        upscaled = await done(app, await dispatch_button(app.services, invocation(), f"upscale:{made}:0"))
        await done(app, busy)
    finally:
        for sim in (lean, full):
            await sim.stop()
    extras = [[r for r in sim.requests if r.path == "/sdapi/v1/extra-single-image"] for sim in (lean, full)]
    assert [len(found) for found in extras] == [0, 1]
    job = await app.services.store.get(upscaled)
    assert job is not None and job.state is JobState.SUCCEEDED and job.backend == "full"


async def test_comfyui_inventory_from_object_info_and_model_folders(comfy: ComfyUISimulator, tmp_path: Path) -> None:
    from adapters.backends.comfyui import ComfyUIBackend

    plain = ComfyUIBackend("comfy", comfy.url)
    graph = json.loads((Path(__file__).parents[1] / "adapters/backends/workflows/sd_txt2img.json").read_text())
    graph["10"] = {"class_type": "UpscaleModelLoader", "inputs": {"model_name": "4x.pth"}}
    custom = tmp_path / "custom.json"
    custom.write_text(json.dumps(graph), encoding="utf-8")
    extra = ComfyUIBackend("extra", comfy.url, options={"workflow": str(custom), "node_map": {"seed": [["3", "seed"]]}})
    try:
        found = (await plain.health()).inventory
        lacking = (await extra.health()).inventory
    finally:
        await plain.aclose()
        await extra.aclose()
    assert found is not None and found.checkpoints == frozenset({"sd_xl_base_1.0.safetensors"})
    assert {"dpm++ 2m", "dpmpp_2m", "euler a"} <= (found.samplers or set())  # presets' names and ComfyUI's
    assert {"karras", "simple"} <= (found.schedulers or set())
    assert "KSampler" in (found.node_types or set()) and found.lacks == ()
    assert lacking is not None and dict(lacking.lacks)["txt2img"].endswith("lacks: UpscaleModelLoader")
