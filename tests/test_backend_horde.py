"""The AI Horde client against a simulator that validates as the real API does (issue 13, items 17 and 18)."""

from __future__ import annotations

import asyncio
import io
from typing import Any

import httpx
import pytest
from PIL import Image
from pydantic import SecretStr

from adapters.backends.horde import HordeBackend
from bot.errors import BackendError
from bot.models import JobState
from commands.dispatch import dispatch_text
from simulators.horde import HordeSimulator
from tests.backend_requests import request
from tests.conftest import AppFactory, invocation

pytestmark = pytest.mark.backends

GOOD: dict[str, Any] = {
    "prompt": "a cat",
    "params": {"sampler_name": "k_euler_a", "steps": 20, "width": 512, "height": 512, "n": 1, "seed": "1"},
    "models": ["Deliberate"],
}
BAD: dict[str, tuple[dict[str, Any], str, str]] = {  # case -> (body, errors key, jsonschema's words)
    "n=0": ({**GOOD, "params": {**GOOD["params"], "n": 0}}, "params.n", "0 is less than the minimum of 1"),
    "n=21": ({**GOOD, "params": {**GOOD["params"], "n": 21}}, "params.n", "21 is greater than the maximum of 20"),
    "no prompt": ({k: v for k, v in GOOD.items() if k != "prompt"}, "prompt", "'prompt' is a required property"),
    "sampler": ({**GOOD, "params": {**GOOD["params"], "sampler_name": "UniPC"}}, "params.sampler_name", "'UniPC'"),
    "width text": ({**GOOD, "params": {**GOOD["params"], "width": "wide"}}, "params.width", "is not of type"),
    "width 500": ({**GOOD, "params": {**GOOD["params"], "width": 500}}, "params.width", "not a multiple of 64"),
}


def horde(url: str, model: str | None = None, key: str = "registered-key") -> HordeBackend:
    options: dict[str, Any] = {"poll_seconds": 0.1} | ({"model": model} if model else {})
    return HordeBackend("horde", url, SecretStr(key), options)


@pytest.mark.parametrize("case", list(BAD))
async def test_simulator_refuses_what_the_real_schema_refuses(case: str) -> None:
    body, field, words = BAD[case]
    sim = HordeSimulator()
    url = await sim.start()
    try:
        async with httpx.AsyncClient(base_url=url, headers={"apikey": "registered-key"}) as client:
            answer = await client.post("/generate/async", json=body)
        assert answer.status_code == 400, answer.text
        reply = answer.json()
        assert reply["message"] == "Input payload validation failed" and words in reply["errors"][field]
        assert not sim.jobs
    finally:
        await sim.stop()


@pytest.mark.parametrize("case", [case for case in BAD if case != "n=0"])  # the SDK turns n=0 into 1 itself
def test_horde_sdk_refuses_the_same_bodies(case: str) -> None:
    models = pytest.importorskip("horde_sdk.ai_horde_api.apimodels")
    consts = pytest.importorskip("horde_sdk.ai_horde_api.consts")
    from pydantic import ValidationError

    body = BAD[case][0]
    if case == "sampler":  # the SDK only warns about unknown samplers; the server's enum refuses them
        assert body["params"]["sampler_name"] not in {s.value for s in consts.KNOWN_SAMPLERS}
        return
    with pytest.raises((ValidationError, TypeError)):  # its width check raises TypeError on text
        models.ImageGenerateAsyncRequest.model_validate({**body, "apikey": "0000000000"})


async def test_unknown_model_is_accepted_but_never_possible() -> None:
    sim = HordeSimulator()
    url = await sim.start()
    try:
        async with httpx.AsyncClient(base_url=url, headers={"apikey": "registered-key"}) as client:
            answer = await client.post("/generate/async", json={**GOOD, "models": ["no such model"]})
            assert answer.status_code == 202 and answer.json()["warnings"][0]["code"] == "NoAvailableWorker"
            check = await client.get(f"/generate/check/{answer.json()['id']}")
            assert check.json()["is_possible"] is False
    finally:
        await sim.stop()


async def test_a_checkpoint_file_name_is_not_sent_as_the_horde_model() -> None:
    sim = HordeSimulator(seconds_per_job=0.05)
    backend = horde(await sim.start())
    try:
        with pytest.raises(BackendError, match="not an AI Horde model") as caught:
            await backend.generate("j", request(checkpoint="sd_xl_base_1.0.safetensors"), None, lambda p: None)
        assert not caught.value.retryable and not sim.jobs
        result = await backend.generate("k", request(checkpoint="Deliberate"), None, lambda p: None)
        assert len(result.images) == 1 and next(iter(sim.jobs.values())).body["models"] == ["Deliberate"]
    finally:
        await backend.aclose()
        await sim.stop()


@pytest.mark.parametrize(
    ("sampler", "expected"),
    [("LMS", "k_lms"), ("DPM2 a", "k_dpm_2_a"), ("DPM fast", "k_dpm_fast"), ("DPM adaptive", "k_dpm_adaptive"),
     ("DPM++ 2S a", "k_dpmpp_2s_a"), ("DPM++ 2M Karras", "k_dpmpp_2m")],
)  # fmt: skip
async def test_samplers_map_to_the_same_horde_sampler(sampler: str, expected: str) -> None:
    sim = HordeSimulator(seconds_per_job=0.01)
    backend = horde(await sim.start(), model="Deliberate")
    try:
        await backend.generate("j", request(sampler=sampler), None, lambda p: None)
        params = next(iter(sim.jobs.values())).body["params"]
        assert params["sampler_name"] == expected and params["karras"] is ("Karras" in sampler)
    finally:
        await backend.aclose()
        await sim.stop()


async def test_a_sampler_the_horde_lacks_is_refused_before_submitting() -> None:
    sim = HordeSimulator()
    backend = horde(await sim.start(), model="Deliberate")
    try:
        with pytest.raises(BackendError, match="UniPC") as caught:
            await backend.generate("j", request(sampler="UniPC"), None, lambda p: None)
        assert not caught.value.retryable and not sim.jobs
    finally:
        await backend.aclose()
        await sim.stop()


@pytest.mark.parametrize(("ttl", "status"), [(1800.0, "404"), (-1.0, "403")])
async def test_a_missing_or_expired_r2_image_is_an_error(ttl: float, status: str) -> None:
    sim = HordeSimulator(seconds_per_job=0.01, r2_ttl_seconds=ttl, lose_images=status == "404")
    backend = horde(await sim.start(), model="Deliberate")
    try:
        with pytest.raises(BackendError, match=status):
            await backend.generate("j", request(), None, lambda p: None)
    finally:
        await backend.aclose()
        await sim.stop()


async def test_images_come_at_the_requested_size() -> None:
    sim = HordeSimulator(seconds_per_job=0.01)
    backend = horde(await sim.start(), model="Deliberate")
    try:
        result = await backend.generate("j", request(width=512, height=768, count=2), None, lambda p: None)
        for image in result.images:
            with Image.open(io.BytesIO(image.data)) as img:
                assert img.size == (512, 768) and img.format == "WEBP"
    finally:
        await backend.aclose()
        await sim.stop()


def test_our_payload_passes_the_sdk_model() -> None:
    models = pytest.importorskip("horde_sdk.ai_horde_api.apimodels")
    backend = horde("http://127.0.0.1:9", model="Deliberate")
    body = backend.payload(request(negative_prompt="blurry", sampler="DPM++ 2M", scheduler="Karras"), None)
    parsed = models.ImageGenerateAsyncRequest.model_validate({**body, "apikey": "0000000000"})
    assert parsed.params is not None and parsed.params.karras and parsed.models == ["Deliberate"]


async def test_through_the_engine_a_file_checkpoint_fails_clearly_and_costs_nothing(app_factory: AppFactory) -> None:
    sim = HordeSimulator(seconds_per_job=0.01)
    url = await sim.start()
    backend = HordeBackend("horde", url, SecretStr("registered-key"), {"poll_seconds": 0.1})
    try:
        preset = {"backend": "horde", "checkpoint": "sd_xl_base_1.0.safetensors", "steps": 20, "base_resolution": 512}
        app = await app_factory(
            backend=backend,
            backends={"horde": {"kind": "horde", "url": url}},
            presets={"hordexl": preset},
            quota={"enabled": True, "user_daily": 1000.0},
        )
        reply = await dispatch_text(app.services, invocation(), "/imagine a lighthouse --preset hordexl")
        assert reply is not None and reply.job_id, reply
        await asyncio.wait_for(app.engine.finished_event(reply.job_id).wait(), 30)
        job = await app.services.store.get(reply.job_id)
        assert job is not None and job.state is JobState.FAILED and "not an AI Horde model" in (job.error or "")
        row = await app.db.fetchone("SELECT state FROM quota_ledger WHERE job_id = ?", (reply.job_id,))
        assert row is not None and row[0] == "refunded" and not sim.jobs
    finally:
        await sim.stop()
