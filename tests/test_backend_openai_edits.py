"""`images.edit` of the OpenAI-compatible client against the simulator's `/v1/images/edits`."""

from __future__ import annotations

import io
from typing import Any

import httpx
import pytest
from PIL import Image
from pydantic import SecretStr

from adapters.backends.openai_images import OpenAIImagesBackend
from bot.errors import BackendError
from bot.ports import Editor
from simulators.openai_images import OpenAIImagesSimulator
from tests.backend_requests import request

pytestmark = pytest.mark.backends


def picture(colour: tuple[int, ...], size: tuple[int, int] = (64, 64), mode: str = "RGB", fmt: str = "PNG") -> bytes:
    out = io.BytesIO()
    Image.new(mode, size, colour).save(out, fmt)
    return out.getvalue()


def size_of(data: bytes) -> tuple[int, int]:
    with Image.open(io.BytesIO(data)) as img:
        return img.size


async def started(model: str) -> tuple[OpenAIImagesSimulator, OpenAIImagesBackend]:
    sim = OpenAIImagesSimulator()
    return sim, OpenAIImagesBackend("oa", await sim.start(), SecretStr("sk-test"), {"model": model})


async def test_gpt_image_edits_several_references_and_the_result_depends_on_them() -> None:
    sim, backend = await started("gpt-image-1")
    editor: Editor = backend  # what the /edit use case will call
    try:
        assert backend.capabilities.edits
        red, blue, green = picture((255, 0, 0)), picture((0, 0, 255), fmt="JPEG"), picture((0, 255, 0), fmt="WEBP")
        job = request(prompt="make it night", width=1536, height=1024, count=2)
        one = await editor.edit("j1", job, [red, blue], lambda p: None)
        two = await backend.edit("j2", job, [red, green], lambda p: None)
        assert len(one.images) == 2 and size_of(one.images[0].data) == (1536, 1024)
        assert one.images[0].data != two.images[0].data
        sent = sim.edit_requests[0]
        assert [(f[0], f[2]) for f in sent["files"]] == [("image[]", "image/png"), ("image[]", "image/jpeg")]
        assert sent["prompt"] == "make it night" and sent["n"] == "2" and sent["size"] == "1536x1024"
        assert "response_format" not in sent
    finally:
        await backend.aclose()
        await sim.stop()


async def test_one_image_goes_as_image_and_odd_formats_are_sent_as_png() -> None:
    sim, backend = await started("gpt-image-1")
    try:
        gif = picture((9, 9, 9), mode="P", fmt="GIF")
        result = await backend.edit("j", request(width=1024, height=1024), [gif], lambda p: None)
        assert len(result.images) == 1
        assert [(f[0], f[2]) for f in sim.edit_requests[0]["files"]] == [("image", "image/png")]
    finally:
        await backend.aclose()
        await sim.stop()


async def test_dall_e_2_inpaints_one_square_png_through_its_mask() -> None:
    sim, backend = await started("dall-e-2")
    try:
        assert not backend.capabilities.edits  # inpainting only, not edits by instruction
        mask = picture((0, 0, 0, 0), (64, 64), "RGBA")
        result = await backend.edit("j", request(width=512, height=512), [picture((200, 10, 10))], lambda p: None, mask)
        assert size_of(result.images[0].data) == (512, 512)
        assert [f[0] for f in sim.edit_requests[0]["files"]] == ["image", "mask"]
        with pytest.raises(BackendError, match="only square images"):
            await backend.edit("j", request(), [picture((1, 2, 3), (64, 32))], lambda p: None)
        with pytest.raises(BackendError, match="at most 1 images"):
            await backend.edit("j", request(), [picture((1, 2, 3))] * 2, lambda p: None)
        assert len(sim.edit_requests) == 1  # refused before anything was sent
    finally:
        await backend.aclose()
        await sim.stop()


async def test_dall_e_3_cannot_edit() -> None:
    sim, backend = await started("dall-e-3")
    try:
        assert not backend.capabilities.edits
        with pytest.raises(BackendError, match="cannot edit images"):
            await backend.edit("j", request(), [picture((1, 2, 3))], lambda p: None)
    finally:
        await backend.aclose()
        await sim.stop()


def form(**fields: str) -> dict[str, str]:
    return {"model": "gpt-image-1", "prompt": "make it night"} | fields


@pytest.mark.parametrize(
    ("fields", "files", "status", "words"),
    [(form(), [("image", ("a.bin", picture((1, 1, 1)), "application/octet-stream"))], 400,
      "unsupported mimetype ('application/octet-stream')"),
     (form(), [("image[]", (f"{n}.png", picture((1, 1, 1)), "image/png")) for n in range(17)], 400, "array too long"),
     (form(), [("image", ("a.png", b"not a picture at all", "image/png"))], 400, "Invalid image file"),
     (form(prompt=""), [("image", ("a.png", picture((1, 1, 1)), "image/png"))], 400, "'prompt'"),
     (form(n="11"), [("image", ("a.png", picture((1, 1, 1)), "image/png"))], 400, "between 1 and 10"),
     (form(size="1792x1024"), [("image", ("a.png", picture((1, 1, 1)), "image/png"))], 400,
      "Invalid value: '1792x1024'"),
     (form(response_format="url"), [("image", ("a.png", picture((1, 1, 1)), "image/png"))], 400, "response_format"),
     (form(model="dall-e-2"), [("image", ("a.png", picture((1, 1, 1)), "image/png"))], 400,
      "format must be in ['RGBA', 'LA', 'L'], got RGB"),
     (form(model="dall-e-2"), [("image", ("a.jpg", picture((1, 1, 1), fmt="JPEG"), "image/jpeg"))], 400,
      "must be a PNG and less than 4 MB"),
     (form(), [("mask", ("m.png", picture((0, 0, 0, 0), mode="RGBA"), "image/png"))], 400,
      "Missing required parameter: 'image'")],
)  # fmt: skip
async def test_simulator_refuses_what_the_api_refuses(
    fields: dict[str, str], files: list[Any], status: int, words: str
) -> None:
    sim = OpenAIImagesSimulator()
    url = await sim.start()
    try:
        async with httpx.AsyncClient(base_url=url, headers={"Authorization": "Bearer sk-test"}) as client:
            answer = await client.post("/v1/images/edits", data=fields, files=files)
        assert answer.status_code == status, answer.text
        assert words in answer.json()["error"]["message"]
    finally:
        await sim.stop()


async def test_json_is_not_multipart() -> None:
    sim = OpenAIImagesSimulator()
    url = await sim.start()
    try:
        async with httpx.AsyncClient(base_url=url, headers={"Authorization": "Bearer sk-test"}) as client:
            answer = await client.post("/v1/images/edits", json=form())
        assert answer.status_code == 400 and "expected multipart/form-data" in answer.json()["error"]["message"]
    finally:
        await sim.stop()


async def test_official_client_edits_against_the_simulator() -> None:
    openai = pytest.importorskip("openai")
    sim = OpenAIImagesSimulator()
    url = await sim.start()
    client = openai.AsyncOpenAI(base_url=f"{url}/v1", api_key="sk-test", max_retries=0)
    try:
        refs = [("a.png", picture((255, 0, 0)), "image/png")]
        refs.append(("b.webp", picture((0, 0, 255), fmt="WEBP"), "image/webp"))
        several = await client.images.edit(model="gpt-image-1", image=refs, prompt="swap the colours", n=2)
        assert several.data and len(several.data) == 2 and several.data[0].b64_json and several.usage is not None
        assert [f[0] for f in sim.edit_requests[-1]["files"]] == ["image[]", "image[]"]
        mask = ("m.png", picture((0, 0, 0, 0), mode="RGBA"), "image/png")
        square = ("s.png", picture((0, 0, 0, 255), mode="RGBA"), "image/png")
        linked = await client.images.edit(model="dall-e-2", image=square, mask=mask, prompt="a hat", size="256x256")
        assert linked.data and linked.data[0].url and linked.data[0].url.startswith(sim.blob.url)
        assert [f[0] for f in sim.edit_requests[-1]["files"]] == ["image", "mask"]
        with pytest.raises(openai.BadRequestError, match="unsupported mimetype"):
            await client.images.edit(model="gpt-image-1", image=("x", b"\x89PNG", "application/octet-stream"),
                                     prompt="x")  # fmt: skip
    finally:
        await client.close()
        await sim.stop()
