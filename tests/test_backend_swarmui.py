"""The SwarmUI client against the SwarmUI simulator: sessions, the WebSocket sequence, cancel, auth, errors."""

from __future__ import annotations

import asyncio
import io
from typing import Any

import httpx
import pytest
from PIL import Image
from pydantic import SecretStr

from adapters.backends.swarmui import SwarmUIBackend
from bot.errors import BackendError, BackendUnavailable
from bot.models import Progress
from simulators.swarmui import SwarmUISimulator
from tests.backend_requests import request

pytestmark = pytest.mark.backends
SDXL = "sd_xl_base_1.0.safetensors"


def size_of(data: bytes) -> tuple[int, int]:
    with Image.open(io.BytesIO(data)) as img:
        return img.size


async def started(**kwargs: Any) -> tuple[SwarmUISimulator, str]:
    sim = SwarmUISimulator(close_grace_seconds=kwargs.pop("close_grace_seconds", 0.0), **kwargs)
    return sim, await sim.start()


async def test_generate_reports_progress_with_previews_and_returns_every_image() -> None:
    sim, url = await started(mini_grid=4)  # several images also come as a grid at batch index -1
    backend = SwarmUIBackend("swarm", url, options={"save_images": True})  # so they come as View/ paths
    seen: list[Progress] = []
    try:
        job = request(checkpoint=SDXL, width=128, height=96, count=3, steps=8, sampler="DPM++ 2M Karras")
        result = await backend.generate("j1", job, None, seen.append)
        assert [size_of(image.data) for image in result.images] == [(128, 96)] * 3
        assert [image.seed for image in result.images] == [42, 43, 44]
        assert len({image.data for image in result.images}) == 3
        assert any(p.preview for p in seen) and all(p.steps == 8 for p in seen if p.step is not None)
        fractions = [p.fraction for p in seen]
        assert fractions == sorted(fractions) and fractions[-1] > 0.9
        sent = sim.requests[0]
        assert sent["model"] == SDXL and sent["sampler"] == "dpmpp_2m" and sent["scheduler"] == "karras"
        assert sent["images"] == 3 and sent["cfgscale"] == 7.0 and sent["negativeprompt"] == ""
        assert sim.loaded == "OfficialStableDiffusion/sd_xl_base_1.0.safetensors"
        assert len(sim.files) == 4 and sent["donotsave"] is False  # three images and the grid, fetched from View/
    finally:
        await backend.aclose()
        await sim.stop()


async def test_discarded_images_are_dropped() -> None:
    sim, url = await started(discard=[0, 2])
    backend = SwarmUIBackend("swarm", url)
    try:
        result = await backend.generate("j", request(checkpoint=SDXL, count=3), None, lambda p: None)
        assert [image.seed for image in result.images] == [43]
    finally:
        await backend.aclose()
        await sim.stop()


async def test_data_url_images_and_img2img_from_the_source() -> None:
    sim, url = await started()
    backend = SwarmUIBackend("swarm", url)
    red, blue = io.BytesIO(), io.BytesIO()
    Image.new("RGB", (64, 64), (255, 0, 0)).save(red, "PNG")
    Image.new("RGB", (64, 64), (0, 0, 255)).save(blue, "PNG")
    try:
        job = request(checkpoint=SDXL, kind="img2img", denoising_strength=0.3)
        first = await backend.generate("j1", job, red.getvalue(), lambda p: None)
        second = await backend.generate("j2", job, blue.getvalue(), lambda p: None)
        assert first.images[0].data != second.images[0].data  # the result depends on the source
        assert sim.requests[0]["initimagecreativity"] == 0.3 and len(sim.requests[0]["initimage"]) > 100
        assert not sim.files and sim.requests[0]["donotsave"] is True  # nothing of the chat's kept in Swarm
    finally:
        await backend.aclose()
        await sim.stop()


async def test_cancel_interrupts_only_this_jobs_session() -> None:
    sim, url = await started(backends=2, seconds_per_step=0.001)
    sim.hold.clear()  # generations pause after their first step until released or interrupted
    backend = SwarmUIBackend("swarm", url)
    first_step = {name: asyncio.Event() for name in ("a", "b")}

    def watcher(name: str) -> Any:
        return lambda p: first_step[name].set() if p.step else None

    try:
        a = asyncio.create_task(backend.generate("a", request(checkpoint=SDXL, steps=4), None, watcher("a")))
        b = asyncio.create_task(backend.generate("b", request(checkpoint=SDXL, steps=4), None, watcher("b")))
        await asyncio.wait_for(asyncio.gather(*(e.wait() for e in first_step.values())), 10)
        await backend.interrupt("a")
        cancelled = await asyncio.wait_for(a, 10)
        assert cancelled.interrupted and not cancelled.images
        assert not b.done()
        sim.hold.set()
        other = await asyncio.wait_for(b, 10)
        assert not other.interrupted and len(other.images) == 1
        assert "interruptall" in sim.routes and len(sim.sessions) >= 2
    finally:
        await backend.aclose()
        await sim.stop()


async def test_an_expired_session_is_renewed() -> None:
    sim, url = await started()
    backend = SwarmUIBackend("swarm", url)
    try:
        assert (await backend.health()).ok
        sim.expire_sessions()
        health = await backend.health()  # the shared session is gone: a new one, and the call again
        assert health.ok and SDXL in " ".join(health.models)
        assert sim.routes.count("getnewsession") == 2
    finally:
        await backend.aclose()
        await sim.stop()


async def test_a_session_that_expires_before_the_websocket_gets_a_new_one() -> None:
    sim, url = await started(session_ttl_seconds=0.0)
    backend = SwarmUIBackend("swarm", url)
    try:
        with pytest.raises(BackendError, match="keeps refusing the session") as caught:
            await backend.generate("j", request(checkpoint=SDXL), None, lambda p: None)
        assert caught.value.retryable and sim.routes.count("getnewsession") == 2
        assert sim.requests == []  # the WebSocket answered invalid_session_id before the input was read
        sim.session_ttl_seconds = None
        result = await backend.generate("j", request(checkpoint=SDXL), None, lambda p: None)
        assert len(result.images) == 1
    finally:
        await backend.aclose()
        await sim.stop()


async def test_health_reports_models_and_the_loaded_one() -> None:
    sim, url = await started()
    backend = SwarmUIBackend("swarm", url)
    try:
        await backend.generate("j", request(checkpoint="flux1-dev"), None, lambda p: None)
        health = await backend.health()
        assert health.ok and len(health.models) == 3 and health.loaded_model == "Flux/flux1-dev.safetensors"
    finally:
        await backend.aclose()
        await sim.stop()


async def test_backend_down() -> None:
    sim, url = await started()
    await sim.stop()
    backend = SwarmUIBackend("swarm", url)
    try:
        health = await backend.health()
        assert not health.ok and "cannot be reached" in health.detail
        with pytest.raises(BackendUnavailable):
            await backend.generate("j", request(checkpoint=SDXL), None, lambda p: None)
    finally:
        await backend.aclose()


async def test_swarm_going_away_mid_job_requeues_it() -> None:
    sim, url = await started()
    sim.hold.clear()
    backend = SwarmUIBackend("swarm", url)
    try:
        job = asyncio.create_task(backend.generate("j", request(checkpoint=SDXL), None, lambda p: None))
        await asyncio.wait_for(sim.started.wait(), 10)
        await sim.stop()  # a restart: the socket closes without `socket_intention`
        with pytest.raises(BackendUnavailable):
            await asyncio.wait_for(job, 10)
    finally:
        await backend.aclose()


@pytest.mark.parametrize(
    ("changes", "words"),
    [({"steps": 900}, "Steps - '900' - must be between 0 and 500"),
     ({"checkpoint": "no_such_model.safetensors"}, "are you sure that model name is correct"),
     ({"sampler": "Made Up Sampler"}, "Invalid value for param Sampler - 'Made Up Sampler'")],
)  # fmt: skip
async def test_bad_parameters_are_refused_with_swarms_reason(changes: dict[str, Any], words: str) -> None:
    sim, url = await started()
    backend = SwarmUIBackend("swarm", url)
    try:
        with pytest.raises(BackendError, match=words) as caught:
            await backend.generate("j", request(**{"checkpoint": SDXL} | changes), None, lambda p: None)
        assert not caught.value.retryable and not isinstance(caught.value, BackendUnavailable)
        assert "SwarmUI" in caught.value.user_message
    finally:
        await backend.aclose()
        await sim.stop()


async def test_the_token_cookie_is_required_when_configured() -> None:
    token = "626f74.0123456789abcdef.validation"
    sim, url = await started(token=token)
    without = SwarmUIBackend("swarm", url)
    with_token = SwarmUIBackend("swarm", url, SecretStr(token), {"save_images": True})
    try:
        health = await without.health()
        assert not health.ok and "requires an account" in health.detail
        with pytest.raises(BackendError, match="requires an account"):
            await without.generate("j", request(checkpoint=SDXL), None, lambda p: None)
        result = await with_token.generate("j", request(checkpoint=SDXL), None, lambda p: None)
        assert len(result.images) == 1 and (await with_token.health()).ok
        async with httpx.AsyncClient(base_url=url) as anonymous:  # the View/ route wants the cookie too
            path = next(iter(sim.files))
            answer = await anonymous.get(f"/View/{path}")
            assert answer.status_code == 400 and answer.json()["error_id"] == "invalid_user"
    finally:
        await without.aclose()
        await with_token.aclose()
        await sim.stop()


async def test_simulator_speaks_swarms_error_shapes() -> None:
    sim, url = await started()
    try:
        async with httpx.AsyncClient(base_url=url) as client:
            answer = await client.post("/API/ListModels", json={"path": "", "depth": 2})
            assert answer.status_code == 400
            assert answer.json() == {"error_id": "basic_api", "error": "missing session id"}
            answer = await client.post("/API/ListModels", json={"session_id": "nope", "path": "", "depth": 2})
            assert answer.status_code == 401 and answer.json()["error_id"] == "invalid_session_id"
            session = (await client.post("/API/getnewsession", json={})).json()["session_id"]
            answer = await client.post("/API/ListModels", json={"session_id": session})
            assert answer.status_code == 200 and answer.json() == {"error": "Missing required parameter 'path'"}
            answer = await client.post("/API/ListModels", content=b"x", headers={"Content-Type": "text/plain"})
            assert answer.status_code == 400 and answer.json()["error_id"] == "basic_api"
    finally:
        await sim.stop()


async def test_no_running_swarm_backend_is_unhealthy_and_requeues_the_job() -> None:
    sim, url = await started(backend_status="idle")
    backend = SwarmUIBackend("swarm", url)
    try:
        health = await backend.health()
        assert not health.ok and "All backends are idle" in health.detail and health.models
        with pytest.raises(BackendUnavailable, match="no backend running"):
            await backend.generate("j", request(checkpoint=SDXL), None, lambda p: None)
        sim.backend_status = "errored"  # some errored, others may run: still usable, and said so
        health = await backend.health()
        assert health.ok and "errored" in health.detail
    finally:
        await backend.aclose()
        await sim.stop()


async def test_waiting_for_a_swarm_backend_and_loading_the_model_are_shown() -> None:
    sim, url = await started(backends=1)
    sim.hold.clear()
    backend = SwarmUIBackend("swarm", url)
    notes: dict[str, list[str]] = {"a": [], "b": []}
    waiting = asyncio.Event()

    def on_b(progress: Progress) -> None:
        notes["b"].append(progress.note)
        if "waiting for a free SwarmUI backend" in progress.note:
            waiting.set()

    try:
        a = asyncio.create_task(
            backend.generate("a", request(checkpoint=SDXL), None, lambda p: notes["a"].append(p.note))
        )
        await asyncio.wait_for(sim.started.wait(), 10)
        b = asyncio.create_task(backend.generate("b", request(checkpoint="flux1-dev"), None, on_b))
        await asyncio.wait_for(waiting.wait(), 10)  # the only GPU is busy with a
        sim.hold.set()
        await asyncio.wait_for(asyncio.gather(a, b), 10)
        assert "SwarmUI is loading the model" in notes["a"] and "SwarmUI is loading the model" in notes["b"]
    finally:
        await backend.aclose()
        await sim.stop()


async def test_health_reports_an_inventory_routing_can_judge() -> None:
    from bot.fit import BackendView, Need, why_not
    from bot.presets import Preset

    sim, url = await started()
    backend = SwarmUIBackend("swarm", url)
    try:
        health = await backend.health()
        inventory = health.inventory
        assert inventory is not None and inventory.samplers and inventory.schedulers
        assert {"dpm++ 2m", "dpmpp_2m", "euler a"} <= inventory.samplers and "karras" in inventory.schedulers
        view = BackendView(backend.name, backend.kind, backend.capabilities, inventory)
        base = {"backend": "swarmui", "checkpoint": SDXL, "sampler": "DPM++ 2M", "scheduler": "Karras",
                "steps": 20, "cfg_scale": 6.0, "base_resolution": 1024}  # fmt: skip
        good = Preset.model_validate({**base, "name": "good"})
        assert why_not(Need(good, variation=True, loras=frozenset({"pixel-art-xl"})), view) is None
        missing = Preset.model_validate({**base, "name": "missing", "checkpoint": "juggernaut_xl.safetensors"})
        assert why_not(Need(missing), view) is not None
        unknown_lora = Need(good, loras=frozenset({"nope"}))
        assert why_not(unknown_lora, view) is not None
    finally:
        await backend.aclose()
        await sim.stop()


async def test_variations_change_the_image_and_keep_the_seed() -> None:
    sim, url = await started()
    backend = SwarmUIBackend("swarm", url)
    try:
        plain = await backend.generate("p", request(checkpoint=SDXL), None, lambda p: None)
        varied = await backend.generate(
            "v", request(checkpoint=SDXL, subseed=7, subseed_strength=0.5, count=2), None, lambda p: None
        )
        assert varied.images[0].data != plain.images[0].data and varied.images[0].data != varied.images[1].data
        assert [image.seed for image in varied.images] == [42, 42]  # Swarm steps the variation seed instead
        assert sim.requests[1]["variationseed"] == 7 and sim.requests[1]["variationseedstrength"] == 0.5
    finally:
        await backend.aclose()
        await sim.stop()
