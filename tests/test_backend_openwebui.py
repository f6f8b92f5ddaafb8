"""The Open WebUI client against a simulator that behaves as open-webui 0.12's images router (issue 13, 16 and 18)."""

from __future__ import annotations

import io

import httpx
import pytest
from PIL import Image
from pydantic import SecretStr

from adapters.backends.openwebui import OpenWebUIBackend
from bot.errors import BackendError
from simulators.openwebui import A1111_MODELS, OpenWebUISimulator
from tests.backend_requests import request

pytestmark = pytest.mark.backends

SD15, SDXL = A1111_MODELS[1][0], A1111_MODELS[0][0]
FORM_FIELDS = {"prompt", "model", "size", "n", "steps", "negative_prompt"}  # CreateImageForm


def a1111_engine() -> OpenWebUISimulator:
    """An admin and a user on an Open WebUI whose images come from a shared A1111 with SDXL set."""
    return OpenWebUISimulator(users={"sk-user": True}, admins={"sk-admin"}, engine="automatic1111", model=SDXL)


async def test_no_key_is_401_and_explained() -> None:
    sim = OpenWebUISimulator()
    url = await sim.start()
    backend = OpenWebUIBackend("ow", url, None)
    try:
        async with httpx.AsyncClient(base_url=url) as client:
            answer = await client.get("/api/v1/images/models")
        assert answer.status_code == 401 and answer.json() == {"detail": "Not authenticated"}
        with pytest.raises(BackendError, match="needs an API key"):
            await backend.generate("j", request(), None, lambda p: None)
    finally:
        await backend.aclose()
        await sim.stop()


@pytest.mark.parametrize("wanted", ["bogus-model", SD15])
async def test_an_admin_key_never_changes_the_global_model(wanted: str) -> None:
    sim = a1111_engine()
    backend = OpenWebUIBackend("ow", await sim.start(), SecretStr("sk-admin"), {"model": wanted})
    try:
        with pytest.raises(BackendError, match=SDXL.split(" ")[0]) as caught:
            await backend.generate("j", request(), None, lambda p: None)
        assert not caught.value.retryable
        assert sim.model_changes == [] and sim.model == SDXL and sim.a1111_checkpoint == SDXL
        assert not (await backend.health()).ok
    finally:
        await backend.aclose()
        await sim.stop()


async def test_the_configured_model_runs_and_no_model_is_sent() -> None:
    sim = a1111_engine()
    backend = OpenWebUIBackend("ow", await sim.start(), SecretStr("sk-admin"), {"model": SDXL})
    try:
        result = await backend.generate("j", request(count=2), None, lambda p: None)
        assert len(result.images) == 2 and sim.model_changes == []
        assert "model" not in sim.requests[-1]
        health = await backend.health()
        assert health.ok and health.loaded_model == SDXL
    finally:
        await backend.aclose()
        await sim.stop()


async def test_a_user_key_cannot_choose_a_model_so_it_says_so() -> None:
    sim = a1111_engine()
    backend = OpenWebUIBackend("ow", await sim.start(), SecretStr("sk-user"), {"model": SD15})
    try:
        with pytest.raises(BackendError, match="admin") as caught:
            await backend.generate("j", request(), None, lambda p: None)
        assert not caught.value.retryable and not sim.requests
    finally:
        await backend.aclose()
        await sim.stop()


async def test_only_the_form_fields_go_and_the_seed_is_not_claimed() -> None:
    sim = a1111_engine()
    backend = OpenWebUIBackend("ow", await sim.start(), SecretStr("sk-user"))
    try:
        result = await backend.generate("j", request(seed=1234, negative_prompt="blurry"), None, lambda p: None)
        sent = sim.requests[-1]
        assert set(sent) <= FORM_FIELDS - {"model"} and sent["negative_prompt"] == "blurry"
        image = result.images[0]
        assert image.seed is None and "seed" in image.infotext
    finally:
        await backend.aclose()
        await sim.stop()


@pytest.mark.parametrize("key", ["sk-admin", "sk-user"])
async def test_check_says_unhealthy_while_generation_is_off(key: str) -> None:
    sim = a1111_engine()
    backend = OpenWebUIBackend("ow", await sim.start(), SecretStr(key))
    try:
        health = await backend.health()
        assert health.ok and health.loaded_model == (SDXL if key == "sk-admin" else None)
        sim.enabled = False
        health = await backend.health()
        assert not health.ok and "switched off" in health.detail
    finally:
        await backend.aclose()
        await sim.stop()


@pytest.mark.parametrize(
    ("reason", "retryable"),
    [("[ERROR: Bad Request]", False), ("Something went wrong :/", False), ("[ERROR: Unauthorized]", False),
     ("[ERROR: Failed to connect to the image generation engine]", True), ("[ERROR: Bad Gateway]", True)],
)  # fmt: skip
async def test_only_passing_engine_errors_are_retried(reason: str, retryable: bool) -> None:
    sim = OpenWebUISimulator(fail_engine=reason)
    backend = OpenWebUIBackend("ow", await sim.start(), SecretStr("sk-owui"))
    try:
        with pytest.raises(BackendError) as caught:
            await backend.generate("j", request(), None, lambda p: None)
        assert caught.value.retryable is retryable
    finally:
        await backend.aclose()
        await sim.stop()


async def test_images_come_at_the_requested_size() -> None:
    sim = OpenWebUISimulator()
    backend = OpenWebUIBackend("ow", await sim.start(), SecretStr("sk-owui"))
    try:
        result = await backend.generate("j", request(width=768, height=512), None, lambda p: None)
        with Image.open(io.BytesIO(result.images[0].data)) as img:
            assert img.size == (768, 512)
    finally:
        await backend.aclose()
        await sim.stop()
