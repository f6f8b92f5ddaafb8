"""The ComfyUI client against the strict ComfyUI simulator."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx
import pytest

from adapters.backends.comfyui import ComfyUIBackend
from bot.errors import BackendError, BackendUnavailable
from bot.models import GenerationRequest, Progress
from simulators.comfyui import ComfyUISimulator
from tests.fakes import png

pytestmark = pytest.mark.backends


def request(**changes: object) -> GenerationRequest:
    base: dict[str, object] = dict(
        preset="sd15",
        user_prompt="a cat",
        prompt="a cat",
        checkpoint="v1-5-pruned-emaonly.safetensors [6ce0161689]",
        sampler="Euler a",
        steps=6,
        cfg_scale=7.0,
        width=64,
        height=64,
        seed=42,
    )
    return GenerationRequest.model_validate(base | changes)


@pytest.fixture
async def comfy() -> AsyncIterator[tuple[ComfyUISimulator, ComfyUIBackend]]:
    sim = ComfyUISimulator(seconds_per_step=0.002)
    url = await sim.start()
    backend = ComfyUIBackend("comfy", url)
    yield sim, backend
    await backend.aclose()
    await sim.stop()


async def test_txt2img_with_progress_and_metadata_previews(comfy: tuple[ComfyUISimulator, ComfyUIBackend]) -> None:
    sim, backend = comfy
    seen: list[Progress] = []
    result = await backend.generate("j1", request(count=2), None, seen.append)
    assert len(result.images) == 2 and result.images[0].data.startswith(b"\x89PNG")
    assert any(p.step == 12 and p.steps == 12 and p.fraction == 1.0 for p in seen)  # two prompts of 6 steps
    assert any(p.preview for p in seen)
    posted = next(r for r in sim.requests if r.path == "/prompt")
    graph = posted.body["prompt"]
    assert graph["4"]["inputs"]["ckpt_name"] == "v1-5-pruned-emaonly.safetensors"
    assert graph["3"]["inputs"]["sampler_name"] == "euler_ancestral"
    assert posted.body["client_id"]
    assert all("Origin" not in r.headers for r in sim.requests)
    assert (await backend.health()).ok


async def test_plain_previews_from_a_server_without_feature_flags() -> None:
    sim = ComfyUISimulator(seconds_per_step=0.002, feature_flags=False)
    backend = ComfyUIBackend("comfy", await sim.start())
    seen: list[Progress] = []
    try:
        await backend.generate("j1", request(), None, seen.append)
        assert any(p.preview for p in seen)
    finally:
        await backend.aclose()
        await sim.stop()


async def test_img2img_uploads_the_source(comfy: tuple[ComfyUISimulator, ComfyUIBackend]) -> None:
    sim, backend = comfy
    result = await backend.generate("j2", request(kind="img2img", denoising_strength=0.5), png(), lambda p: None)
    assert len(result.images) == 1
    assert "imagebridge/j2.png" in sim.inputs
    graph = next(r for r in sim.requests if r.path == "/prompt").body["prompt"]
    assert graph["10"]["inputs"]["image"] == "imagebridge/j2.png" and graph["3"]["inputs"]["denoise"] == 0.5


async def test_flux_workflow(comfy: tuple[ComfyUISimulator, ComfyUIBackend]) -> None:
    sim, backend = comfy
    flux = request(checkpoint="flux1-dev-fp8.safetensors", sampler="Euler", scheduler="Simple", cfg_scale=1.0)
    result = await backend.generate("j3", flux.model_copy(update={"distilled_cfg_scale": 3.0}), None, lambda p: None)
    assert len(result.images) == 1
    graph = next(r for r in sim.requests if r.path == "/prompt").body["prompt"]
    assert graph["30"]["inputs"]["guidance"] == 3.0 and graph["5"]["class_type"] == "EmptySD3LatentImage"


async def test_unknown_checkpoint_is_explained(comfy: tuple[ComfyUISimulator, ComfyUIBackend]) -> None:
    _, backend = comfy
    with pytest.raises(BackendError, match=r"'nope\.safetensors' is not available") as caught:
        await backend.generate("j4", request(checkpoint="nope.safetensors"), None, lambda p: None)
    assert not caught.value.retryable


async def test_execution_error_is_reported(comfy: tuple[ComfyUISimulator, ComfyUIBackend]) -> None:
    sim, backend = comfy
    sim.fail_node("KSampler", "torch.OutOfMemoryError", "Allocation on device")
    with pytest.raises(BackendError, match="Allocation on device"):
        await backend.generate("j5", request(), None, lambda p: None)


async def test_cancel_running_and_queued(comfy: tuple[ComfyUISimulator, ComfyUIBackend]) -> None:
    sim, backend = comfy
    sim.seconds_per_step = 0.05
    first = asyncio.create_task(backend.generate("run", request(steps=200), None, lambda p: None))
    async with asyncio.timeout(5):
        await sim.started.wait()
    second = asyncio.create_task(backend.generate("wait", request(steps=200, seed=7), None, lambda p: None))
    await sim.wait_for_pending(1)
    await backend.interrupt("wait")
    await backend.interrupt("run")
    async with asyncio.timeout(5):
        queued, running = await second, await first
    assert queued.interrupted and not queued.images
    assert running.interrupted and not running.images
    assert any(r.path == "/queue" and r.body == {"delete": [r.body["delete"][0]]} for r in sim.requests if r.body)


async def test_origin_mismatch_is_refused_by_the_simulator(comfy: tuple[ComfyUISimulator, ComfyUIBackend]) -> None:
    sim, _ = comfy
    async with httpx.AsyncClient(base_url=sim.url) as client:
        refused = await client.get("/api/system_stats", headers={"Origin": "http://evil.example"})
        history = await client.get("/history/unknown")
    assert refused.status_code == 403
    assert history.json() == {}


async def test_unreachable_is_unavailable() -> None:
    backend = ComfyUIBackend("gone", "http://127.0.0.1:9")
    try:
        with pytest.raises(BackendUnavailable):
            await backend.generate("j6", request(), None, lambda p: None)
        assert not (await backend.health()).ok
    finally:
        await backend.aclose()
