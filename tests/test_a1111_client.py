"""The A1111/Forge client against the simulator over loopback."""

from __future__ import annotations

import asyncio
import io
from collections.abc import AsyncIterator

import pytest
from PIL import Image
from pydantic import SecretStr

from adapters.backends.a1111 import A1111Backend
from bot.errors import BackendError, BackendUnavailable
from bot.models import GenerationRequest, JobState, Progress
from commands.dispatch import dispatch_text
from simulators.a1111 import A1111Simulator
from tests.conftest import AppFactory, invocation
from tests.fakes import png

pytestmark = pytest.mark.backends


def request(**changes: object) -> GenerationRequest:
    base: dict[str, object] = {
        "preset": "sd15",
        "user_prompt": "cat",
        "prompt": "cat",
        "negative_prompt": "blurry",
        "checkpoint": "v1-5-pruned-emaonly.safetensors",
        "sampler": "Euler",
        "scheduler": "Karras",
        "steps": 10,
        "cfg_scale": 7.0,
        "width": 512,
        "height": 384,
        "seed": 1234,
        "count": 2,
    }
    base.update(changes)
    return GenerationRequest(**base)  # type: ignore[arg-type]


@pytest.fixture
async def forge() -> AsyncIterator[A1111Simulator]:
    sim = A1111Simulator(flavour="forge", seconds_per_step=0.01, model_load_seconds=0.05, preview_every=2)
    await sim.start()
    yield sim
    await sim.stop()


@pytest.fixture
async def a1111() -> AsyncIterator[A1111Simulator]:
    sim = A1111Simulator(flavour="a1111", seconds_per_step=0.01, model_load_seconds=0.05, auth=("bot", "s3cret"))
    await sim.start()
    yield sim
    await sim.stop()


def client(sim: A1111Simulator, kind: str = "forge", **kwargs: object) -> A1111Backend:
    return A1111Backend("gpu", sim.url, kind=kind, poll_interval_seconds=0.02, **kwargs)  # type: ignore[arg-type]


async def test_txt2img_returns_images_seeds_and_infotext(forge: A1111Simulator) -> None:
    backend = client(forge)
    try:
        result = await backend.generate("job1", request(), None, lambda p: None)
    finally:
        await backend.aclose()
    assert [image.seed for image in result.images] == [1234, 1235]
    assert all("Seed: " in image.infotext for image in result.images)
    with Image.open(io.BytesIO(result.images[0].data)) as img:
        assert img.size == (512, 384) and "cat" in str(img.info.get("parameters"))
    sent = next(r for r in forge.requests if r.path.endswith("/txt2img")).json
    assert sent["override_settings"]["sd_model_checkpoint"] == "v1-5-pruned-emaonly.safetensors"
    assert (sent["steps"], sent["batch_size"], sent["scheduler"], sent["force_task_id"]) == (10, 2, "Karras", "job1")


async def test_progress_with_previews_while_running(forge: A1111Simulator) -> None:
    backend = client(forge)
    seen: list[Progress] = []
    try:
        await backend.generate("job2", request(steps=30, count=1), None, seen.append)
    finally:
        await backend.aclose()
    steps = [p.step for p in seen if p.step]
    assert steps and max(steps) > 1 and steps == sorted(steps)
    assert any(p.preview for p in seen)


async def test_img2img_sends_the_source(forge: A1111Simulator) -> None:
    backend = client(forge)
    try:
        result = await backend.generate(
            "job3", request(kind="img2img", count=1, denoising_strength=0.4), png(300, 200), lambda p: None
        )
    finally:
        await backend.aclose()
    sent = next(r for r in forge.requests if r.path.endswith("/img2img")).json
    assert len(sent["init_images"]) == 1 and sent["denoising_strength"] == 0.4
    with Image.open(io.BytesIO(result.images[0].data)) as img:
        assert img.size == (512, 384)


async def test_upscale_uses_extra_single_image(forge: A1111Simulator) -> None:
    backend = client(forge)
    try:
        result = await backend.generate(
            "job4", request(kind="upscale", upscale_factor=2.0), png(64, 48), lambda p: None
        )
    finally:
        await backend.aclose()
    with Image.open(io.BytesIO(result.images[0].data)) as img:
        assert img.size == (128, 96)


async def test_interrupt_stops_the_running_job(forge: A1111Simulator) -> None:
    backend = client(forge)
    try:
        task = asyncio.create_task(backend.generate("job5", request(steps=400, count=1), None, lambda p: None))
        await forge.wait_for_step(3)
        await backend.interrupt("job5")
        result = await asyncio.wait_for(task, 5)
    finally:
        await backend.aclose()
    assert len(result.images) <= 1
    assert any(r.path.endswith("/interrupt") for r in forge.requests)


@pytest.mark.parametrize(
    ("flavour", "status", "body", "message"),
    [
        (
            "a1111",
            500,
            {"error": "OutOfMemoryError", "detail": "", "body": "", "errors": "CUDA out of memory"},
            "ran out of memory",
        ),
        (
            "forge",
            500,
            {"error": "RuntimeError", "detail": "", "body": "", "message": "model 'x' not found"},
            "does not have the model",
        ),
        (
            "a1111",
            500,
            {"error": "NansException", "detail": "", "body": "", "errors": "A tensor with all NaNs"},
            "NaNs",
        ),
        (
            "forge",
            422,
            {
                "detail": [
                    {
                        "type": "int_parsing",
                        "loc": ["body", "steps"],
                        "msg": "Input should be a valid integer",
                        "input": "x",
                    }
                ]
            },
            "steps: Input should be a valid integer",
        ),
        (
            "a1111",
            404,
            {"error": "HTTPException", "detail": "Init image not found", "body": "", "errors": ""},
            "Init image not found",
        ),
    ],
)
async def test_error_bodies_become_user_messages(
    forge: A1111Simulator, flavour: str, status: int, body: dict[str, object], message: str
) -> None:
    forge.fail_next("/sdapi/v1/txt2img", status, body)
    backend = client(forge, kind=flavour)
    try:
        with pytest.raises(BackendError) as error:
            await backend.generate("job6", request(), None, lambda p: None)
    finally:
        await backend.aclose()
    assert message in error.value.user_message


async def test_basic_auth_and_wrong_password(a1111: A1111Simulator) -> None:
    good = client(a1111, kind="a1111", username="bot", password=SecretStr("s3cret"))
    bad = client(a1111, kind="a1111", username="bot", password=SecretStr("nope"))
    try:
        assert len((await good.generate("ok", request(count=1), None, lambda p: None)).images) == 1
        with pytest.raises(BackendError, match="credentials"):
            await bad.generate("no", request(count=1), None, lambda p: None)
        health = await good.health()
        assert health.ok and health.loaded_model and len(health.models) == 3
        assert not (await bad.health()).ok
    finally:
        await good.aclose()
        await bad.aclose()


async def test_unreachable_backend_is_unavailable() -> None:
    backend = A1111Backend("gone", "http://127.0.0.1:9", connect_timeout_seconds=1)
    try:
        with pytest.raises(BackendUnavailable, match="cannot be reached"):
            await backend.generate("job7", request(), None, lambda p: None)
        assert not (await backend.health()).ok
    finally:
        await backend.aclose()


async def test_flux_through_the_engine_black_without_simple(app_factory: AppFactory, forge: A1111Simulator) -> None:
    backend = client(forge)
    app = await app_factory(
        backend=backend,
        presets={
            "badflux": {
                "checkpoint": "flux1-dev-bnb-nf4-v2.safetensors",
                "sampler": "Euler",
                "scheduler": "Karras",
                "cfg_scale": 7,
                "steps": 4,
                "backend": "forge",
            }
        },
    )
    good = await dispatch_text(app.services, invocation(channel_nsfw=True), "/imagine a boy running --preset flux")
    bad = await dispatch_text(app.services, invocation(), "/imagine a boy running --preset badflux")
    assert good and bad and good.job_id and bad.job_id
    for job_id in (good.job_id, bad.job_id):
        await asyncio.wait_for(app.engine.finished_event(job_id).wait(), 10)
    ok = await app.services.store.get(good.job_id)
    black = await app.services.store.get(bad.job_id)
    assert ok is not None and ok.state is JobState.SUCCEEDED
    assert black is not None and black.state is JobState.FAILED and "Simple" in (black.error or "")
    flux_sent = next(r.json for r in forge.requests if r.path.endswith("/txt2img"))
    assert flux_sent["distilled_cfg_scale"] == 3.5 and flux_sent["scheduler"] == "Simple"
    assert "ae.safetensors" in flux_sent["override_settings"]["forge_additional_modules"]
