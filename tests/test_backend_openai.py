"""The OpenAI-compatible client against a simulator whose links live on another origin and expire."""

from __future__ import annotations

import asyncio
import io

import pytest
from PIL import Image
from pydantic import SecretStr

from adapters.backends.openai_images import OpenAIImagesBackend
from bot.errors import BackendError
from bot.models import JobState
from commands.dispatch import dispatch_text
from simulators.openai_images import OpenAIImagesSimulator
from tests.backend_requests import request
from tests.conftest import AppFactory, invocation

pytestmark = pytest.mark.backends


def size_of(data: bytes) -> tuple[int, int]:
    with Image.open(io.BytesIO(data)) as img:
        return img.size


async def test_url_images_are_fetched_without_the_api_key() -> None:
    sim = OpenAIImagesSimulator(always_url=True)
    backend = OpenAIImagesBackend("oa", await sim.start(), SecretStr("sk-test"), {"model": "dall-e-2"})
    try:
        result = await backend.generate("j", request(width=512, height=512, count=2), None, lambda p: None)
        assert len(result.images) == 2 and all(size_of(i.data) == (512, 512) for i in result.images)
        assert len(sim.blob.requests) == 2
        leaked = [headers for headers in sim.blob.requests if "Authorization" in headers]
        assert not leaked, "the API key went to the blob host"
    finally:
        await backend.aclose()
        await sim.stop()


async def test_an_expired_link_is_an_error_not_an_image() -> None:
    sim = OpenAIImagesSimulator(always_url=True, url_ttl_seconds=-1)
    backend = OpenAIImagesBackend("oa", await sim.start(), SecretStr("sk-test"), {"model": "dall-e-2"})
    try:
        with pytest.raises(BackendError, match="403") as caught:
            await backend.generate("j", request(width=512, height=512), None, lambda p: None)
        assert not caught.value.retryable  # generating again would be charged again
        assert sim.blob.requests and "Authorization" not in sim.blob.requests[0]
    finally:
        await backend.aclose()
        await sim.stop()


async def test_dall_e_3_delivers_every_image_it_is_asked_for() -> None:
    sim = OpenAIImagesSimulator()
    backend = OpenAIImagesBackend("oa", await sim.start(), SecretStr("sk-test"), {"model": "dall-e-3"})
    try:
        result = await backend.generate("j", request(width=1024, height=1024, count=3), None, lambda p: None)
        assert len(result.images) == 3
        assert [body["n"] for body in sim.requests] == [1, 1, 1]  # the real API answers 400 for n > 1
        assert len({image.data for image in result.images}) == 3
    finally:
        await backend.aclose()
        await sim.stop()


async def test_simulator_refuses_n_above_one_for_dall_e_3() -> None:
    import httpx

    sim = OpenAIImagesSimulator()
    url = await sim.start()
    try:
        async with httpx.AsyncClient(base_url=url, headers={"Authorization": "Bearer sk-test"}) as client:
            answer = await client.post("/v1/images/generations", json={"model": "dall-e-3", "prompt": "x", "n": 3})
            assert answer.status_code == 400
            assert answer.json()["error"]["message"] == "You must provide n=1 for this model."
            answer = await client.post("/v1/images/generations", json={"model": "dall-e-2", "prompt": "x", "n": 11})
            assert answer.status_code == 400 and answer.json()["error"]["code"] == "integer_above_max_value"
    finally:
        await sim.stop()


@pytest.mark.parametrize(("model", "size"), [("dall-e-2", (512, 512)), ("dall-e-3", (1792, 1024))])
async def test_images_come_at_the_size_the_model_was_asked_for(model: str, size: tuple[int, int]) -> None:
    sim = OpenAIImagesSimulator()
    backend = OpenAIImagesBackend("oa", await sim.start(), SecretStr("sk-test"), {"model": model})
    try:
        result = await backend.generate("j", request(width=size[0], height=size[1]), None, lambda p: None)
        assert size_of(result.images[0].data) == size
    finally:
        await backend.aclose()
        await sim.stop()


async def test_official_client_agrees_with_the_simulator() -> None:
    openai = pytest.importorskip("openai")
    sim = OpenAIImagesSimulator()
    url = await sim.start()
    client = openai.AsyncOpenAI(base_url=f"{url}/v1", api_key="sk-test", max_retries=0)
    try:
        linked = await client.images.generate(model="dall-e-2", prompt="a cat", size="256x256")
        assert linked.data and linked.data[0].url and linked.data[0].url.startswith(sim.blob.url)
        coded = await client.images.generate(model="gpt-image-1", prompt="a cat", size="1024x1536")
        assert coded.data and coded.data[0].b64_json and coded.usage is not None
        with pytest.raises(openai.BadRequestError, match="n=1"):
            await client.images.generate(model="dall-e-3", prompt="a cat", n=2)
    finally:
        await client.close()
        await sim.stop()


async def test_through_the_engine_every_charged_image_is_delivered(app_factory: AppFactory) -> None:
    sim = OpenAIImagesSimulator()
    url = await sim.start()
    backend = OpenAIImagesBackend("dalle", url, SecretStr("sk-test"), {"model": "dall-e-3"})
    try:
        preset = {"backend": "dalle", "checkpoint": "dall-e-3", "steps": 1, "base_resolution": 1024, "max_images": 4}
        app = await app_factory(
            backend=backend,
            backends={"dalle": {"kind": "openai", "url": url}},
            presets={"dalle": preset},
            quota={"enabled": True, "user_daily": 100.0},
        )
        reply = await dispatch_text(app.services, invocation(), "/imagine a lighthouse --preset dalle --n 3")
        assert reply is not None and reply.job_id, reply
        await asyncio.wait_for(app.engine.finished_event(reply.job_id).wait(), 30)
        job = await app.services.store.get(reply.job_id)
        assert job is not None and job.state is JobState.SUCCEEDED, job
        stored = await app.db.fetchall("SELECT idx FROM images WHERE job_id = ?", (reply.job_id,))
        row = await app.db.fetchone("SELECT state, amount FROM quota_ledger WHERE job_id = ?", (reply.job_id,))
        assert len(stored) == 3 and row is not None and row[0] == "settled" and row[1] == job.cost
    finally:
        await sim.stop()


@pytest.mark.parametrize(
    ("link", "same"),
    [("https://api.example.com/v1/files/x.png", True), ("/generated/x.png", True),
     ("https://api.example.com:8443/x.png", False), ("https://api.example.com@evil.example/x.png", False),
     ("https://blob.example.net/private/x.png?sig=1", False), ("http://api.example.com/x.png", False)],
)  # fmt: skip
def test_the_key_goes_only_to_the_api_origin(link: str, same: bool) -> None:
    from adapters.backends.downloads import same_origin

    assert same_origin(link, "https://api.example.com/v1") is same
