"""Hires fix as a preset option on A1111/Forge: sent as the WebUI's txt2img fields, counted in the cost,
honoured by the simulator (size, installed upscaler) and refused where no backend can run it."""

from __future__ import annotations

import io
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from adapters.backends.a1111 import A1111Backend
from bot.app import App, build_app
from bot.errors import BackendError
from bot.models import Hires
from bot.pool import check
from bot.replies import Tone
from commands.dispatch import dispatch_text
from simulators.a1111 import A1111Simulator
from tests.backend_requests import request
from tests.conftest import invocation, make_settings
from tests.fakes import RecordingOutbound

pytestmark = pytest.mark.backends

HIRES_PRESET: dict[str, Any] = {
    "backend": "a1111",
    "checkpoint": "sd_xl_base_1.0.safetensors",
    "base_resolution": 512,
    "steps": 10,
    "sampler": "Euler",
    "cfg_scale": 6.0,
    "hires": {"upscaler": "R-ESRGAN 4x+", "scale": 1.5, "denoising_strength": 0.4, "second_pass_steps": 6},
}

Rig = Callable[..., Awaitable[tuple[App, A1111Simulator]]]


@pytest.fixture
async def rig(tmp_path: Path) -> AsyncIterator[Rig]:
    made: list[tuple[App, A1111Simulator]] = []

    async def factory(kind: str = "forge", **sim: Any) -> tuple[App, A1111Simulator]:
        simulator = A1111Simulator(flavour="forge", seconds_per_step=0.001, model_load_seconds=0.0, **sim)
        url = await simulator.start()
        settings = make_settings(
            tmp_path / f"data{len(made)}", backends={"gpu": {"kind": kind, "url": url}}, presets={"hr": HIRES_PRESET}
        )
        backend = A1111Backend("gpu", url, kind=kind, poll_interval_seconds=0.05)
        app = await build_app(settings, [RecordingOutbound()], backends=[backend])
        await app.start()
        await check(app.engine.workers[0])  # what the backend has, before the first command
        made.append((app, simulator))
        return app, simulator

    yield factory
    for app, simulator in made:
        await app.stop()
        await simulator.stop()


async def test_a_hires_preset_runs_the_second_pass_and_is_charged_for_it(rig: Rig) -> None:
    app, sim = await rig()
    reply = await dispatch_text(app.services, invocation(), "/imagine a castle --preset hr")
    assert reply is not None and reply.job_id, reply
    await app.engine.finished_event(reply.job_id).wait()
    body = next(r.json for r in sim.requests if r.path.endswith("/txt2img"))
    assert body["enable_hr"] is True and body["hr_upscaler"] == "R-ESRGAN 4x+" and body["hr_scale"] == 1.5
    assert body["denoising_strength"] == 0.4 and body["hr_second_pass_steps"] == 6
    assert body["hr_cfg"] == 6.0  # Forge's hires pass has its own CFG, 1.0 unless told
    images = await app.services.store.images(reply.job_id)
    assert [(image.width, image.height) for image in images] == [(768, 768)]
    with Image.open(io.BytesIO(await app.services.files.read(images[0].path))) as png:
        assert png.size == (768, 768)
    job = await app.services.store.get(reply.job_id)
    assert job is not None and job.cost == round((10 * 512 * 512 + 6 * 768 * 768) / 1e6, 3)  # 2.62 + 3.54


async def test_a_hires_upscaler_the_backend_lacks_is_refused_up_front(rig: Rig) -> None:
    app, sim = await rig(upscalers=[])  # only the built-in None, Lanczos, Nearest
    reply = await dispatch_text(app.services, invocation(), "/imagine a castle --preset hr")
    assert reply is not None and reply.tone is Tone.ERROR
    assert "hires fix upscaler R-ESRGAN 4x+ is missing" in reply.text
    row = await app.db.fetchone("SELECT COUNT(*) FROM jobs")
    assert row is not None and row[0] == 0
    assert not [r for r in sim.requests if r.path.endswith("/txt2img")]


async def test_hires_is_refused_on_a_webui_without_it(rig: Rig) -> None:
    app, _ = await rig(kind="sdnext")
    reply = await dispatch_text(app.services, invocation(), "/imagine a castle --preset hr")
    assert reply is not None and reply.tone is Tone.ERROR
    assert "no hires fix" in reply.text
    row = await app.db.fetchone("SELECT COUNT(*) FROM jobs")
    assert row is not None and row[0] == 0


@pytest.fixture
async def forge() -> AsyncIterator[A1111Simulator]:
    sim = A1111Simulator(flavour="forge", seconds_per_step=0.001, model_load_seconds=0.0, upscalers=["DAT x2"])
    await sim.start()
    yield sim
    await sim.stop()


async def test_the_simulator_keeps_the_aspect_when_one_side_is_given(forge: A1111Simulator) -> None:
    backend = A1111Backend("gpu", forge.url, kind="forge", poll_interval_seconds=0.05)
    try:
        hires = Hires(upscaler="Latent", resize_x=1024)
        result = await backend.generate("j1", request(width=512, height=768, hires=hires), None, lambda _p: None)
    finally:
        await backend.aclose()
    with Image.open(io.BytesIO(result.images[0].data)) as png:
        assert png.size == (1024, 1536) == hires.target(512, 768)


async def test_the_simulator_refuses_a_hires_upscaler_it_has_not_installed(forge: A1111Simulator) -> None:
    backend = A1111Backend("gpu", forge.url, kind="forge", poll_interval_seconds=0.05)
    try:
        with pytest.raises(BackendError) as raised:
            await backend.generate("j2", request(hires=Hires(upscaler="R-ESRGAN 4x+")), None, lambda _p: None)
        installed = await backend.generate("j3", request(hires=Hires(upscaler="DAT x2")), None, lambda _p: None)
    finally:
        await backend.aclose()
    assert "could not find upscaler named R-ESRGAN 4x+" in str(raised.value.detail or raised.value)
    with Image.open(io.BytesIO(installed.images[0].data)) as png:
        assert png.size == (128, 128)


def test_the_eta_counts_the_second_pass() -> None:
    plain = request(width=512, height=512, steps=10)
    hires = request(width=512, height=512, steps=10, hires=Hires(scale=1.5, second_pass_steps=6))
    assert plain.step_megapixels == pytest.approx(10 * 0.262144)
    assert hires.step_megapixels == pytest.approx(10 * 0.262144 + 6 * 0.589824)  # 768 × 768 for 6 steps
    assert request(kind="img2img", hires=Hires()).step_megapixels == request().step_megapixels  # txt2img only


def test_only_forge_gets_the_hires_cfg_fields() -> None:
    hires = request(hires=Hires(upscaler="Latent", resize_y=96), distilled_cfg_scale=3.5)
    a1111 = A1111Backend("a", "http://127.0.0.1:9", kind="a1111").payload("j", hires, None)
    forge = A1111Backend("f", "http://127.0.0.1:9", kind="forge").payload("j", hires, None)
    assert a1111["enable_hr"] and a1111["hr_resize_y"] == 96 and "hr_cfg" not in a1111
    assert forge["hr_cfg"] == 7.0 and forge["hr_distilled_cfg"] == 3.5
    assert "enable_hr" not in A1111Backend("a", "http://127.0.0.1:9").payload("j", request(), None)
