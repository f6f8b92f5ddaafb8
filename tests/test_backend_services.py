"""OpenAI-compatible, Open WebUI and AI Horde clients against their simulators."""

from __future__ import annotations

import asyncio

import pytest
from pydantic import SecretStr

from adapters.backends.horde import HordeBackend
from adapters.backends.openai_images import OpenAIImagesBackend, nearest_size
from adapters.backends.openwebui import OpenWebUIBackend
from bot.errors import BackendError
from bot.models import Progress
from simulators.horde import HordeSimulator
from simulators.openai_images import OpenAIImagesSimulator
from simulators.openwebui import OpenWebUISimulator
from tests.backend_requests import request
from tests.fakes import png

pytestmark = pytest.mark.backends


# ---- OpenAI-compatible ---------------------------------------------------------------------------


@pytest.mark.parametrize("model", ["dall-e-3", "gpt-image-1"])
async def test_openai_b64_and_size_mapping(model: str) -> None:
    sim = OpenAIImagesSimulator()
    backend = OpenAIImagesBackend("oa", await sim.start(), SecretStr("sk-test"), {"model": model})
    try:
        result = await backend.generate("j", request(width=1216, height=832, count=1), None, lambda p: None)
        assert len(result.images) == 1 and result.images[0].data.startswith(b"\x89PNG")
        sent = sim.requests[-1]
        assert sent["size"] == ("1792x1024" if model == "dall-e-3" else "1536x1024")
        assert ("response_format" in sent) is (model == "dall-e-3")
        assert (await backend.health()).ok
    finally:
        await backend.aclose()
        await sim.stop()


async def test_openai_errors_explained() -> None:
    sim = OpenAIImagesSimulator()
    url = await sim.start()
    good = OpenAIImagesBackend("oa", url, SecretStr("sk-test"), {"model": "dall-e-2"})
    bad = OpenAIImagesBackend("oa", url, SecretStr("sk-wrong"))
    try:
        with pytest.raises(BackendError, match="safety system"):
            await good.generate("j", request(prompt="something forbidden"), None, lambda p: None)
        with pytest.raises(BackendError, match="API key"):
            await bad.generate("j", request(), None, lambda p: None)
        sim.fail_next.append((429, "requests", "Rate limit reached"))
        with pytest.raises(BackendError, match="rate-limiting") as caught:
            await good.generate("j", request(), None, lambda p: None)
        assert caught.value.retryable
        assert nearest_size("localai-model", 640, 480) == "640x480"
    finally:
        await good.aclose()
        await bad.aclose()
        await sim.stop()


# ---- Open WebUI ----------------------------------------------------------------------------------


async def test_openwebui_generates_and_downloads_with_key() -> None:
    sim = OpenWebUISimulator(seconds=0.05)
    backend = OpenWebUIBackend("ow", await sim.start(), SecretStr("sk-owui"), {"note_seconds": 0.01})
    seen: list[Progress] = []
    try:
        result = await backend.generate("j", request(count=2), None, seen.append)
        assert len(result.images) == 2
        assert any(p.note_key == "progress_note.owui_elapsed" for p in seen)
        assert "sd_xl_base_1.0.safetensors" in (await backend.health()).models
    finally:
        await backend.aclose()
        await sim.stop()


async def test_openwebui_400_401_403_explained() -> None:
    sim = OpenWebUISimulator(users={"sk-owui": True, "sk-nope": False})
    url = await sim.start()
    backends = [OpenWebUIBackend("ow", url, SecretStr(k)) for k in ("sk-owui", "sk-bad", "sk-nope")]
    try:
        with pytest.raises(BackendError, match="API key"):
            await backends[1].generate("j", request(), None, lambda p: None)
        with pytest.raises(BackendError, match="switched off"):
            await backends[2].generate("j", request(), None, lambda p: None)
        sim.enabled = False
        with pytest.raises(BackendError, match="switched off"):
            await backends[0].generate("j", request(), None, lambda p: None)
        sim.enabled, sim.fail_engine = True, "ComfyUI: connection refused"
        with pytest.raises(BackendError, match="connection refused"):
            await backends[0].generate("j", request(), None, lambda p: None)
    finally:
        for backend in backends:
            await backend.aclose()
        await sim.stop()


# ---- AI Horde ------------------------------------------------------------------------------------


def horde(url: str, key: str | None = None) -> HordeBackend:
    return HordeBackend("horde", url, SecretStr(key) if key else None, {"poll_seconds": 0.15, "model": "Deliberate"})


async def test_horde_txt2img_and_img2img_with_queue_notes() -> None:
    sim = HordeSimulator(seconds_per_job=0.3)
    backend = horde(await sim.start())
    seen: list[Progress] = []
    try:
        result = await backend.generate("j", request(negative_prompt="blurry", width=500), None, seen.append)
        assert len(result.images) == 1 and result.images[0].data[8:12] == b"WEBP"
        assert any(p.note_key in ("progress_note.horde_position", "progress_note.horde_generating") for p in seen)
        job = next(iter(sim.jobs.values()))
        assert job.body["prompt"] == "a cat ### blurry" and job.body["params"]["width"] == 512
        assert job.key == "0000000000"
        again = await backend.generate("k", request(kind="img2img", denoising_strength=0.4), png(), lambda p: None)
        assert len(again.images) == 1
        assert list(sim.jobs.values())[1].body["source_processing"] == "img2img"
        assert sim.r2.requests and all("apikey" not in headers for headers in sim.r2.requests)
    finally:
        await backend.aclose()
        await sim.stop()


async def test_horde_rc_errors_and_censorship() -> None:
    sim = HordeSimulator(seconds_per_job=0.05, anonymous_concurrency=0)
    url = await sim.start()
    anonymous, bad, good = horde(url), horde(url, "nope"), horde(url, "registered-key")
    try:
        with pytest.raises(BackendError, match="limits how many") as caught:
            await anonymous.generate("j", request(), None, lambda p: None)
        assert caught.value.retryable
        sim.anonymous_concurrency = 5
        with pytest.raises(BackendError, match="kudos up front"):
            await anonymous.generate("j", request(width=2048, height=2048), None, lambda p: None)
        with pytest.raises(BackendError, match="API key"):
            await bad.generate("j", request(), None, lambda p: None)
        with pytest.raises(BackendError, match="censored"):
            await good.generate("j", request(prompt="censorme please"), None, lambda p: None)
    finally:
        for backend in (anonymous, bad, good):
            await backend.aclose()
        await sim.stop()


async def test_horde_cancel_queued_and_running() -> None:
    sim = HordeSimulator(workers=0)
    backend = horde(await sim.start(), "registered-key")
    try:
        queued = asyncio.create_task(backend.generate("q", request(), None, lambda p: None))
        async with asyncio.timeout(5):
            while not sim.jobs:  # noqa: ASYNC110 - a job appears when the POST lands
                await asyncio.sleep(0)
        await backend.interrupt("q")
        assert (await queued).interrupted
        assert next(iter(sim.jobs.values())).state == "cancelled"
    finally:
        await backend.aclose()
        await sim.stop()
    sim = HordeSimulator(seconds_per_job=30)
    backend = horde(await sim.start(), "registered-key")
    try:
        running = asyncio.create_task(backend.generate("r", request(), None, lambda p: None))
        async with asyncio.timeout(5):
            await sim.processing.wait()
        await backend.interrupt("r")
        assert (await running).interrupted
    finally:
        await backend.aclose()
        await sim.stop()


# ---- factory -------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["a1111", "forge", "sdnext", "comfyui", "openwebui", "openai", "horde"])
async def test_factory_builds_every_kind(kind: str) -> None:
    from adapters.backends.factory import build_backend
    from bot.settings import BackendConfig

    config = BackendConfig.model_validate({"kind": kind, "url": "http://127.0.0.1:9", "models": ["m1"]})
    backend = build_backend("b", config, SecretStr("k"))
    try:
        assert backend.name == "b" and backend.kind == kind
    finally:
        await backend.aclose()
