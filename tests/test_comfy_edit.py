"""Issue 14 item 2: edit by instruction on ComfyUI (Flux Kontext, Qwen-Image-Edit) against the simulator."""

from __future__ import annotations

import asyncio
import io
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image

from adapters.backends.comfyui import ComfyUIBackend
from adapters.backends.comfyui_graph import load_workflow
from adapters.backends.factory import build_backend
from bot.errors import BackendError, ConfigError
from bot.models import Progress
from bot.settings import BackendConfig
from simulators.comfyui import ComfyUISimulator
from tests.fakes import png
from tests.test_backend_comfyui import request

pytestmark = pytest.mark.backends

RED, BLUE, GREEN, GREY = (220, 30, 30), (30, 30, 220), (30, 200, 60), (128, 128, 128)


@pytest.fixture
async def sim() -> AsyncIterator[ComfyUISimulator]:
    simulator = ComfyUISimulator(seconds_per_step=0.002)
    await simulator.start()
    yield simulator
    await simulator.stop()


async def editor(sim: ComfyUISimulator, workflow: str, **options: Any) -> ComfyUIBackend:
    return ComfyUIBackend("comfy", sim.url, options={"edit_workflow": workflow, **options})


def edit_request(**changes: object) -> Any:
    base: dict[str, object] = dict(prompt="make it night", sampler="Euler", steps=4, width=96, height=64)
    return request(**(base | changes))


def uploads(sim: ComfyUISimulator) -> list[Any]:
    return [r for r in sim.requests if r.method == "POST" and r.path == "/upload/image"]


def prompts(sim: ComfyUISimulator) -> list[dict[str, Any]]:
    return [r.body["prompt"] for r in sim.requests if r.method == "POST" and r.path == "/prompt"]


def pixel(data: bytes) -> tuple[int, ...]:
    image = Image.open(io.BytesIO(data)).convert("RGB")
    return tuple(image.getpixel((image.width // 2, image.height // 2)))


async def test_kontext_edits_one_reference_with_progress_and_previews(sim: ComfyUISimulator) -> None:
    backend = await editor(sim, "flux_kontext_edit")
    assert backend.capabilities.edits and backend.max_references == 1
    seen: list[Progress] = []
    result = await backend.edit("k1", edit_request(), [png(300, 200, RED)], seen.append)
    await backend.aclose()
    assert len(result.images) == 1 and result.images[0].seed == 42
    assert Image.open(io.BytesIO(result.images[0].data)).size == (96, 64)  # the size the graph asks for
    assert pixel(result.images[0].data)[0] > 120  # the red reference shows through
    graph = prompts(sim)[0]
    assert graph["142"]["inputs"]["image"] == "imagebridge/k1-ref1.png"
    assert graph["6"]["inputs"]["text"] == "make it night" and graph["31"]["inputs"]["seed"] == 42
    assert [p.step for p in seen if p.steps == 4][-1] == 4 and any(p.preview for p in seen)


async def test_qwen_edits_with_three_references(sim: ComfyUISimulator) -> None:
    backend = await editor(sim, "qwen_image_edit")
    assert backend.max_references == 3
    sources = [png(64, 64, RED), png(80, 64, BLUE), png(64, 80, GREEN)]
    seen: list[Progress] = []
    result = await backend.edit("q3", edit_request(count=2), sources, seen.append)
    await backend.aclose()
    assert [image.seed for image in result.images] == [42, 43]
    assert len(uploads(sim)) == 3
    assert sim.folders["input"]["imagebridge/q3-ref2.png"] == sources[1]
    graph = prompts(sim)[0]
    assert {graph[node]["inputs"]["image"] for node in ("78", "106", "108")} == {
        f"imagebridge/q3-ref{i}.png" for i in (1, 2, 3)
    }
    assert graph["111"]["inputs"]["prompt"] == "make it night" and graph["112"]["inputs"]["width"] == 96
    assert any(p.preview for p in seen)


async def test_qwen_with_one_reference_drops_the_unused_image_inputs(sim: ComfyUISimulator) -> None:
    backend = await editor(sim, "qwen_image_edit")
    result = await backend.edit("q1", edit_request(), [png(64, 64, RED)], lambda _: None)
    await backend.aclose()
    graph = prompts(sim)[0]
    assert result.images and "106" not in graph and "108" not in graph
    assert set(graph["111"]["inputs"]) == {"prompt", "clip", "vae", "image1"}


async def test_a_fourth_reference_is_refused_before_anything_is_uploaded(sim: ComfyUISimulator) -> None:
    backend = await editor(sim, "qwen_image_edit")
    with pytest.raises(BackendError) as caught:
        await backend.edit("q4", edit_request(), [png()] * 4, lambda _: None)
    kontext = await editor(sim, "flux_kontext_edit")
    with pytest.raises(BackendError):
        await kontext.edit("k2", edit_request(), [png(), png()], lambda _: None)
    await backend.aclose()
    await kontext.aclose()
    assert caught.value.key == "backend.comfy_too_many_references" and "at most 3" in caught.value.user_message
    assert uploads(sim) == [] and prompts(sim) == []


async def test_an_edit_resumed_after_a_restart_collects_its_prompt(sim: ComfyUISimulator) -> None:
    first = await editor(sim, "qwen_image_edit")
    done = await first.edit("r1", edit_request(), [png(64, 64, RED), png(64, 64, BLUE)], lambda _: None)
    await first.aclose()
    again = await editor(sim, "qwen_image_edit")  # the bot restarted: same job, same references
    resumed = await again.edit("r1", edit_request(), [png(64, 64, RED), png(64, 64, BLUE)], lambda _: None)
    await again.aclose()
    assert len(prompts(sim)) == 1 and resumed.images[0].data == done.images[0].data


@pytest.mark.parametrize("workflow", ["flux_kontext_edit", "qwen_image_edit"])
async def test_the_output_depends_on_the_reference_pixels(sim: ComfyUISimulator, workflow: str) -> None:
    backend = await editor(sim, workflow)
    red = await backend.edit("d1", edit_request(), [png(64, 64, RED)], lambda _: None)
    blue = await backend.edit("d2", edit_request(), [png(64, 64, BLUE)], lambda _: None)
    await backend.aclose()
    assert red.images[0].data != blue.images[0].data
    assert pixel(red.images[0].data)[0] > pixel(blue.images[0].data)[0]


async def test_a_running_edit_is_cancelled(sim: ComfyUISimulator) -> None:
    backend = await editor(sim, "flux_kontext_edit")
    sim.executor.seconds_per_step = 0.05
    stepped = asyncio.Event()
    task = asyncio.create_task(backend.edit("c1", edit_request(steps=200), [png()], lambda _: stepped.set()))
    async with asyncio.timeout(5):
        await stepped.wait()
    await backend.interrupt("c1")
    async with asyncio.timeout(5):
        result = await task
    await backend.aclose()
    assert result.interrupted and not result.images


async def test_a_wrong_node_input_is_refused_as_comfyui_refuses_it(sim: ComfyUISimulator, tmp_path: Path) -> None:
    graph = load_workflow("flux_kontext_edit")
    graph["177"]["inputs"]["latent"] = ["42", 0]  # an IMAGE into ReferenceLatent's LATENT input
    graph["6"]["inputs"]["prompt"] = graph["6"]["inputs"].pop("text")  # CLIPTextEncode's input is `text`
    path = tmp_path / "bad_kontext.json"
    path.write_text(json.dumps(graph))
    node_map = {"prompt": [["6", "prompt"]], "seed": [["31", "seed"]], "image1": [["142", "image"]]}
    backend = await editor(sim, str(path), edit_node_map=node_map)
    with pytest.raises(BackendError) as caught:
        await backend.edit("w1", edit_request(), [png()], lambda _: None)
    await backend.aclose()
    message = caught.value.user_message
    assert "node 177 (ReferenceLatent): input latent is linked to an output of type IMAGE" in message
    assert "node 6 (CLIPTextEncode) lacks its input text" in message
    assert not sim.history  # nothing ran


async def test_object_info_has_the_edit_nodes_real_schemas(sim: ComfyUISimulator) -> None:
    async with httpx.AsyncClient(base_url=sim.url) as client:
        info = (await client.get("/object_info")).json()
    plus = info["TextEncodeQwenImageEditPlus"]["input"]
    assert list(plus["required"]) == ["clip", "prompt"]
    assert list(plus["optional"]) == ["vae", "image1", "image2", "image3"]
    assert info["ReferenceLatent"]["input"]["optional"] == {"latent": ["LATENT", {}]}
    assert info["FluxKontextImageScale"]["output"] == ["IMAGE"]
    assert info["CFGNorm"]["input"]["required"]["strength"][1]["max"] == 100.0


def test_edits_capability_only_with_an_edit_workflow() -> None:
    plain = build_backend("c", BackendConfig(kind="comfyui", url="http://127.0.0.1:9"), None)
    config = BackendConfig(kind="comfyui", url="http://127.0.0.1:9", edit_workflow="qwen_image_edit")
    edits = build_backend("c", config, None)
    assert not plain.capabilities.edits and edits.capabilities.edits
    with pytest.raises(ConfigError):
        ComfyUIBackend("c", "http://127.0.0.1:9", options={"edit_workflow": "sd_txt2img"})  # maps no image1
