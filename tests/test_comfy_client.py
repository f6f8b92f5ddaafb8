"""Issue 13 items 5-12: the ComfyUI client against the simulator made faithful to ComfyUI v0.3.64."""

from __future__ import annotations

import asyncio
import gc
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from adapters.backends.comfyui import ComfyUIBackend
from adapters.backends.comfyui_graph import load_workflow
from bot.errors import BackendError, BackendUnavailable
from bot.models import Progress
from simulators.comfyui import ComfyUISimulator
from tests.fakes import png
from tests.test_backend_comfyui import request

pytestmark = pytest.mark.backends


@pytest.fixture
async def comfy() -> AsyncIterator[tuple[ComfyUISimulator, ComfyUIBackend]]:
    sim = ComfyUISimulator(seconds_per_step=0.002)
    backend = ComfyUIBackend("comfy", await sim.start())
    yield sim, backend
    await backend.aclose()
    await sim.stop()


def posted_prompts(sim: ComfyUISimulator) -> list[dict[str, Any]]:
    return [r.body for r in sim.requests if r.method == "POST" and r.path == "/prompt"]


async def foreign_prompt(sim: ComfyUISimulator, steps: int, client_id: str | None = None) -> str:
    """Another user of the same ComfyUI queues a prompt (the web UI, a script without a client_id)."""
    graph = load_workflow("sd_txt2img")
    graph["3"]["inputs"] |= {"steps": steps, "seed": 999}
    graph["6"]["inputs"]["text"] = "someone else's picture"
    graph["5"]["inputs"] |= {"width": 64, "height": 64}
    body: dict[str, Any] = {"prompt": graph} | ({"client_id": client_id} if client_id else {})
    async with httpx.AsyncClient(base_url=sim.url) as client:
        return str((await client.post("/prompt", json=body)).json()["prompt_id"])


# ---- 5. previews survive the progress message that follows them ------------------------------------------------


async def test_every_progress_after_the_first_preview_keeps_a_preview(
    comfy: tuple[ComfyUISimulator, ComfyUIBackend],
) -> None:
    _, backend = comfy
    seen: list[Progress] = []
    await backend.generate("p1", request(steps=5), None, seen.append)
    first = next(i for i, p in enumerate(seen) if p.preview)
    assert all(p.preview for p in seen[first:]), [(p.step, bool(p.preview)) for p in seen]
    assert seen[-1].step == 5 and seen[-1].preview


# ---- 6. previews of other clients' prompts are not ours --------------------------------------------------------


async def test_previews_of_a_prompt_without_client_id_are_ignored(
    comfy: tuple[ComfyUISimulator, ComfyUIBackend],
) -> None:
    sim, backend = comfy
    sim.executor.seconds_per_step = 0.01
    foreign = await foreign_prompt(sim, steps=15)  # runs first; its previews are broadcast to every socket
    seen: list[Progress] = []
    result = await backend.generate("p2", request(steps=3), None, seen.append)
    owners = {sim.preview_owners[p.preview] for p in seen if p.preview}
    assert result.images and foreign not in owners and len(owners) == 1


# ---- 7. a timeout stops the prompt, and leaks no task ----------------------------------------------------------


async def test_timeout_interrupts_the_prompt_and_leaks_no_task(
    comfy: tuple[ComfyUISimulator, ComfyUIBackend],
) -> None:
    sim, backend = comfy
    sim.executor.seconds_per_step = 0.01
    leaked: list[dict[str, Any]] = []
    loop = asyncio.get_running_loop()
    loop.set_exception_handler(lambda _loop, context: leaked.append(context))
    try:
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.3):  # what the worker does with job_timeout_seconds
                await backend.generate("slow", request(steps=500), None, lambda p: None)
        await backend.interrupt("slow")  # the worker's interrupt after the timeout
        prompt_id = posted_prompts(sim)[0]["prompt_id"]
        entry = await sim.wait_for_history(str(prompt_id), timeout=3)  # 500 steps would take 5 s
        assert entry["status"]["status_str"] == "error"
        assert any(kind == "execution_interrupted" for kind, _ in entry["status"]["messages"])
        gc.collect()
        await asyncio.sleep(0)
        assert not [c for c in leaked if "never retrieved" in str(c.get("message"))], leaked
    finally:
        loop.set_exception_handler(None)
    sim.executor.seconds_per_step, sim.executor.previews = 0.0, False
    retried = await backend.generate("slow", request(steps=500), None, lambda p: None)  # the worker's retry
    ids = [body["prompt_id"] for body in posted_prompts(sim)]
    assert retried.images and len(ids) == 2 and ids[0] != ids[1], "the interrupted prompt is looked past"


async def test_a_queued_prompt_is_deleted_when_the_job_times_out(
    comfy: tuple[ComfyUISimulator, ComfyUIBackend],
) -> None:
    sim, backend = comfy
    sim.executor.seconds_per_step = 0.01
    await foreign_prompt(sim, steps=100)
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.3):
            await backend.generate("waiting", request(steps=5), None, lambda p: None)
    async with httpx.AsyncClient(base_url=sim.url) as client:
        queue = (await client.get("/queue")).json()
    assert queue["queue_pending"] == []


# ---- 8. a node error fails the job, not the backend -----------------------------------------------------------


async def test_a_node_error_is_final_and_names_the_node(comfy: tuple[ComfyUISimulator, ComfyUIBackend]) -> None:
    sim, backend = comfy
    sim.fail_node("VAEDecode", "RuntimeError", "Given groups=1, weight of size [4, 4, 1, 1], expected input")
    with pytest.raises(BackendError) as caught:
        await backend.generate("n1", request(), None, lambda p: None)
    assert not caught.value.retryable and not isinstance(caught.value, BackendUnavailable)
    assert "VAEDecode" in caught.value.user_message and "weight of size" in caught.value.user_message


async def test_out_of_memory_counts_against_the_backend(comfy: tuple[ComfyUISimulator, ComfyUIBackend]) -> None:
    sim, backend = comfy
    sim.fail_node("KSampler", "torch.OutOfMemoryError", "Allocation on device")
    with pytest.raises(BackendError) as caught:
        await backend.generate("n2", request(), None, lambda p: None)
    assert caught.value.retryable


# ---- 9. the true seed of each image, and real variations ------------------------------------------------------


async def test_each_image_has_its_true_seed(comfy: tuple[ComfyUISimulator, ComfyUIBackend]) -> None:
    _, backend = comfy
    batch = await backend.generate("s1", request(count=2, seed=42), None, lambda p: None)
    second = batch.images[1]
    again = await backend.generate("s2", request(count=1, seed=second.seed), None, lambda p: None)
    assert again.images[0].data == second.data


async def test_a_variation_is_a_different_image(comfy: tuple[ComfyUISimulator, ComfyUIBackend]) -> None:
    _, backend = comfy
    parent = await backend.generate("v0", request(seed=42), None, lambda p: None)
    varied = await backend.generate("v1", request(seed=42, subseed=7, subseed_strength=0.15), None, lambda p: None)
    assert varied.images[0].data != parent.images[0].data
    assert varied.images[0].seed == 42


# ---- 10. img2img needs an img2img workflow --------------------------------------------------------------------


async def test_a_txt2img_only_workflow_refuses_img2img_before_queueing() -> None:
    sim = ComfyUISimulator(seconds_per_step=0.002)
    backend = ComfyUIBackend("comfy", await sim.start(), options={"workflow": "sd_txt2img"})
    try:
        assert backend.capabilities.img2img is False
        with pytest.raises(BackendError) as caught:
            await backend.generate("i1", request(kind="img2img", denoising_strength=0.5), png(), lambda p: None)
        assert not caught.value.retryable and "img2img" in caught.value.user_message
        assert not posted_prompts(sim) and not sim.inputs
    finally:
        await backend.aclose()
        await sim.stop()


async def test_a_named_img2img_workflow_is_used_for_img2img() -> None:
    sim = ComfyUISimulator(seconds_per_step=0.002)
    options = {"workflow": "sd_txt2img", "img2img_workflow": "sd_img2img"}
    backend = ComfyUIBackend("comfy", await sim.start(), options=options)
    try:
        assert backend.capabilities.img2img is True
        await backend.generate("i2", request(kind="img2img", denoising_strength=0.5), png(), lambda p: None)
        graph = posted_prompts(sim)[0]["prompt"]
        assert any(node["class_type"] == "LoadImage" for node in graph.values())
    finally:
        await backend.aclose()
        await sim.stop()


# ---- 11. validation errors name the node and the value --------------------------------------------------------


async def test_an_out_of_range_value_names_node_input_and_limit(
    comfy: tuple[ComfyUISimulator, ComfyUIBackend],
) -> None:
    _, backend = comfy
    with pytest.raises(BackendError) as caught:
        await backend.generate("e1", request(steps=0), None, lambda p: None)
    message = caught.value.user_message
    assert "KSampler" in message and "steps" in message and "0" in message and "min of 1" in message, message
    assert "(steps)" not in message


async def test_a_missing_node_class_is_explained(
    tmp_path: Path, comfy: tuple[ComfyUISimulator, ComfyUIBackend]
) -> None:
    sim, _ = comfy
    graph = load_workflow("sd_txt2img")
    graph["8"]["class_type"] = "VAEDecodeHunyuan3D"
    path = tmp_path / "custom.json"
    path.write_text(json.dumps(graph))
    node_map = {"prompt": [["6", "text"]], "seed": [["3", "seed"]]}
    backend = ComfyUIBackend("comfy", sim.url, options={"workflow": str(path), "node_map": node_map})
    try:
        with pytest.raises(BackendError) as caught:
            await backend.generate("e2", request(), None, lambda p: None)
        assert caught.value.key == "backend.comfy_missing_node"
        assert "VAEDecodeHunyuan3D" in caught.value.user_message
    finally:
        await backend.aclose()


# ---- 12. resume after a restart -------------------------------------------------------------------------------


async def test_after_a_restart_the_running_prompt_is_awaited_not_run_again(
    comfy: tuple[ComfyUISimulator, ComfyUIBackend],
) -> None:
    sim, backend = comfy
    sim.executor.seconds_per_step = 0.01
    first = asyncio.create_task(backend.generate("r1", request(steps=40), None, lambda p: None))
    async with asyncio.timeout(5):
        await sim.started.wait()
    await sim.drop_sockets()  # the bot's process dies: its socket goes, its prompt keeps running
    with pytest.raises(BackendUnavailable):
        await first
    restarted = ComfyUIBackend("comfy", sim.url)  # the next process, the same job id
    try:
        result = await restarted.generate("r1", request(steps=40), None, lambda p: None)
    finally:
        await restarted.aclose()
    assert len(result.images) == 1 and result.images[0].seed == 42
    assert len(posted_prompts(sim)) == 1
    assert posted_prompts(sim)[0].get("prompt_id")


async def test_a_finished_prompt_is_collected_after_a_restart(
    comfy: tuple[ComfyUISimulator, ComfyUIBackend],
) -> None:
    sim, backend = comfy
    done = await backend.generate("r2", request(), None, lambda p: None)
    restarted = ComfyUIBackend("comfy", sim.url)
    try:
        again = await restarted.generate("r2", request(), None, lambda p: None)
    finally:
        await restarted.aclose()
    assert again.images[0].data == done.images[0].data
    assert len(posted_prompts(sim)) == 1


async def test_a_newer_server_cancels_by_id_through_its_jobs_api() -> None:
    sim = ComfyUISimulator(seconds_per_step=0.05, jobs_api=True)  # newer master: canonical UUIDs, /api/jobs
    backend = ComfyUIBackend("comfy", await sim.start())
    try:
        first = asyncio.create_task(backend.generate("run", request(steps=200), None, lambda p: None))
        async with asyncio.timeout(5):
            await sim.started.wait()
        second = asyncio.create_task(backend.generate("wait", request(steps=200, seed=7), None, lambda p: None))
        await sim.wait_for_pending(1)
        await backend.interrupt("wait")
        await backend.interrupt("run")
        async with asyncio.timeout(5):
            queued, running = await second, await first
        assert queued.interrupted and running.interrupted
        paths = [r.path for r in sim.requests if r.method == "POST"]
        assert sum(path.startswith("/api/jobs/") and path.endswith("/cancel") for path in paths) >= 2
        assert "/interrupt" not in paths and "/queue" not in paths
    finally:
        await backend.aclose()
        await sim.stop()
