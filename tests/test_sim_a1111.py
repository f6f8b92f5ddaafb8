"""The A1111/Forge simulator speaks the wire protocol of shared/reference/backends.md §1-2."""

from __future__ import annotations

import asyncio
import base64
import io
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import httpx
import pytest
from PIL import Image

from simulators.a1111 import A1111Simulator
from simulators.images import encode_png, render_image

TXT2IMG = "/sdapi/v1/txt2img"
IMG2IMG = "/sdapi/v1/img2img"
EXTRAS = "/sdapi/v1/extra-single-image"
PROGRESS = "/sdapi/v1/progress"
OPTIONS = "/sdapi/v1/options"
SD15 = "v1-5-pruned-emaonly.safetensors [6ce0161689]"
SDXL = "sd_xl_base_1.0.safetensors [31e35c80fc]"
A1111_404 = {"error": "HTTPException", "detail": "Init image not found", "body": "", "errors": ""}
IDLE_STATE = dict(skipped=False, interrupted=False, stopping_generation=False, job="", job_count=0)
IDLE_STATE |= dict(job_timestamp="0", job_no=0, sampling_step=0, sampling_steps=0)

Factory = Callable[..., Awaitable[tuple[A1111Simulator, httpx.AsyncClient]]]


@pytest.fixture
async def make() -> AsyncIterator[Factory]:
    """Start simulators (stopped at teardown), each with an httpx client on it."""
    started: list[tuple[A1111Simulator, httpx.AsyncClient]] = []

    async def factory(**kwargs: Any) -> tuple[A1111Simulator, httpx.AsyncClient]:
        kwargs.setdefault("seconds_per_step", 0.001)
        kwargs.setdefault("model_load_seconds", 0.01)
        sim = A1111Simulator(**kwargs)
        client = httpx.AsyncClient(base_url=await sim.start(), timeout=20)
        started.append((sim, client))
        return sim, client

    yield factory
    for sim, client in started:
        await client.aclose()
        await sim.stop()


async def gen(client: httpx.AsyncClient, path: str = TXT2IMG, **req: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """POST a generation that must succeed; returns (body, parsed info)."""
    r = await client.post(path, json=req)
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    assert isinstance(body["info"], str)
    return body, json.loads(body["info"])


def png(b64: str) -> Image.Image:
    assert not b64.startswith("data:")
    img = Image.open(io.BytesIO(base64.b64decode(b64)))
    assert img.format == "PNG"
    img.load()
    return img


def b64_png(img: Image.Image) -> str:
    return base64.b64encode(encode_png(img, None)).decode()


def is_black(b64: str) -> bool:
    return png(b64).convert("RGB").getbbox() is None


# ----- txt2img -----------------------------------------------------------------------------


async def test_txt2img_response_shape(make: Factory) -> None:
    sim, client = await make()
    req: dict[str, Any] = dict(
        prompt="cat", negative_prompt="blurry", steps=3, width=320, height=256, seed=1234, unknown_key=1
    )
    body, info = await gen(client, **req)
    assert set(body) == {"images", "parameters", "info"}
    img = png(body["images"][0])
    assert img.size == (320, 256)
    assert img.info["parameters"] == info["infotexts"][0]
    assert info["infotexts"][0].startswith("cat\nNegative prompt: blurry\nSteps: 3, Sampler: Euler, CFG scale: 7.0")
    assert "Seed: 1234, Size: 320x256, Model hash: 6ce0161689, Model: v1-5-pruned-emaonly" in info["infotexts"][0]
    assert info["seed"] == 1234 and info["all_seeds"] == [1234] and info["prompt"] == "cat"
    assert info["sampler_name"] == "Euler" and info["cfg_scale"] == 7.0 and info["steps"] == 3
    assert info["sd_model_name"] == "v1-5-pruned-emaonly" and info["sd_model_hash"] == "6ce0161689"
    assert info["index_of_first_image"] == 0 and info["version"] == "v1.10.1" and len(info["job_timestamp"]) == 14
    params = body["parameters"]
    assert params["seed"] == 1234 and params["sampler_index"] == "Euler" and params["sampler_name"] is None
    assert "restore_faces" in params and params["restore_faces"] is None and "unknown_key" not in params
    assert sim.completed_jobs == 1 and not sim.running.is_set()


async def test_defaults_and_random_seed(make: Factory) -> None:
    _, client = await make()
    body, info = await gen(client)
    assert info["steps"] == 50 and info["width"] == 512 and info["height"] == 512
    assert 0 <= info["seed"] < 2**32 and 0 <= info["subseed"] < 2**32
    assert body["parameters"]["seed"] == -1
    assert png(body["images"][0]).size == (512, 512)


async def test_batches_seeds_and_rounding(make: Factory) -> None:
    _, client = await make()
    body, info = await gen(client, prompt="x", steps=1, seed=10, batch_size=2, n_iter=2, width=300, height=203)
    assert info["all_seeds"] == [10, 11, 12, 13] and len(info["infotexts"]) == 4
    assert len(body["images"]) == 4 and len(set(body["images"])) == 4
    assert png(body["images"][3]).size == (296, 200)


async def test_same_seed_same_bytes_different_seed_differs(make: Factory) -> None:
    _, client = await make()
    first, _ = await gen(client, prompt="a lighthouse", steps=2, seed=77)
    again, _ = await gen(client, prompt="a lighthouse", steps=2, seed=77)
    other, _ = await gen(client, prompt="a lighthouse", steps=2, seed=78)
    assert first["images"] == again["images"]
    assert png(first["images"][0]).tobytes() != png(other["images"][0]).tobytes()


async def test_unknown_sampler_and_scheduler_fall_back(make: Factory) -> None:
    _, client = await make()
    _, info = await gen(client, steps=1, sampler_name="Nope", scheduler="weird")
    assert info["sampler_name"] == "DPM++ 2M"
    _, info = await gen(client, steps=1, sampler_name="Euler a Karras")
    assert info["sampler_name"] == "Euler a" and "Schedule type: Karras" in info["infotexts"][0]


async def test_send_images_false_and_oom(make: Factory) -> None:
    _, client = await make()
    body, _ = await gen(client, steps=1, send_images=False)
    assert body["images"] == []
    r = await client.post(TXT2IMG, json={"steps": 1, "width": 8192, "height": 8192})
    assert r.status_code == 500
    assert r.json()["error"] == "OutOfMemoryError" and r.json()["errors"].startswith("CUDA out of memory")


# ----- queue, progress, interrupt ----------------------------------------------------------


async def test_concurrent_posts_complete_in_arrival_order(make: Factory) -> None:
    sim, client = await make(seconds_per_step=0.01)
    done: list[str] = []

    async def post(tag: str, steps: int) -> None:
        _, info = await gen(client, prompt=tag, steps=steps, seed=1)
        done.append(info["prompt"])

    first = asyncio.create_task(post("a", 20))
    await sim.wait_for_step(1)
    second = asyncio.create_task(post("b", 10))  # longer than c: it would finish last if c jumped the queue
    await sim.wait_for_requests(2)
    third = asyncio.create_task(post("c", 1))
    await sim.wait_for_requests(3)
    await asyncio.gather(first, second, third)
    assert done == ["a", "b", "c"] and sim.completed_jobs == 3


async def test_progress_idle_shape(make: Factory) -> None:
    _, client = await make()
    r = await client.get(PROGRESS, params={"skip_current_image": "false"})
    assert r.json() == {"progress": 0, "eta_relative": 0, "state": IDLE_STATE, "current_image": None, "textinfo": None}


async def test_progress_while_running_then_interrupt(make: Factory) -> None:
    sim, client = await make(seconds_per_step=0.01)
    job = asyncio.create_task(client.post(TXT2IMG, json={"prompt": "p", "steps": 10_000, "seed": 5}))
    await sim.wait_for_step(5)
    body = (await client.get(PROGRESS, params={"skip_current_image": "false"})).json()
    state = body["state"]
    assert state["job"] == "scripts_txt2img" and state["job_count"] == 1 and state["job_no"] == 0
    assert state["sampling_step"] >= 5 and state["sampling_steps"] == 10_000
    assert 0.01 < body["progress"] < 1 and body["eta_relative"] > 0
    assert png(body["current_image"]).size[0] > 0
    assert (await client.get(PROGRESS, params={"skip_current_image": "true"})).json()["current_image"] is None
    assert (await client.post("/sdapi/v1/interrupt")).json() == {}
    r = await job
    assert r.status_code == 200 and len(r.json()["images"]) == 1
    idle = (await client.get(PROGRESS)).json()
    assert idle["progress"] == 0 and idle["state"]["job"] == "" and idle["state"]["interrupted"] is True


async def test_no_preview_before_enough_steps(make: Factory) -> None:
    sim, client = await make(seconds_per_step=0.01, preview_every=1000)
    job = asyncio.create_task(client.post(TXT2IMG, json={"steps": 10_000}))
    await sim.wait_for_step(2)
    assert (await client.get(PROGRESS)).json()["current_image"] is None
    await client.post("/sdapi/v1/interrupt")
    assert (await job).status_code == 200


async def test_interrupt_while_idle_is_lost_and_skip_answers_null(make: Factory) -> None:
    _, client = await make()
    assert (await client.post("/sdapi/v1/interrupt")).json() == {}
    r = await client.post("/sdapi/v1/skip")
    assert r.status_code == 200 and r.json() is None
    body, _ = await gen(client, steps=2)
    assert len(body["images"]) == 1


# ----- models ------------------------------------------------------------------------------


@pytest.mark.parametrize("flavour", ["a1111", "forge"])
async def test_flux_black_unless_simple_and_cfg_1(make: Factory, flavour: str) -> None:
    _, client = await make(flavour=flavour)
    flux: dict[str, Any] = {"override_settings": {"sd_model_checkpoint": "flux1-dev-bnb-nf4-v2"}, "steps": 2}
    assert is_black((await gen(client, **flux))[0]["images"][0])
    assert is_black((await gen(client, **flux, scheduler="Simple"))[0]["images"][0])  # cfg 7
    good, _ = await gen(client, **flux, scheduler="simple", cfg_scale=1, distilled_cfg_scale=3.5)
    assert not is_black(good["images"][0])


async def test_override_checkpoint_switches_and_counts(make: Factory) -> None:
    sim, client = await make()
    assert sim.loaded_checkpoint == SD15 and sim.model_switches == 0
    _, info = await gen(client, steps=1, override_settings={"sd_model_checkpoint": "31e35c80fc"})
    assert info["sd_model_name"] == "sd_xl_base_1.0"
    assert sim.loaded_checkpoint == SDXL and sim.model_switches == 1
    await gen(client, steps=1, override_settings={"sd_model_checkpoint": "sd_xl_base_1.0.safetensors"})
    assert sim.model_switches == 1
    # A1111 drops an unknown override and reloads the model the options name.
    await gen(client, steps=1, override_settings={"sd_model_checkpoint": "nope"})
    assert sim.loaded_checkpoint == SD15 and sim.model_switches == 2


async def test_forge_drops_an_unknown_override_and_keeps_the_loaded_model(make: Factory) -> None:
    # process_images pops an override that names no known checkpoint before set_config could refuse it.
    sim, client = await make(flavour="forge")
    r = await client.post(TXT2IMG, json={"steps": 1, "override_settings": {"sd_model_checkpoint": "nope"}})
    assert r.status_code == 200
    assert json.loads(r.json()["info"])["sd_model_name"] == "v1-5-pruned-emaonly"
    assert sim.loaded_checkpoint == SD15 and sim.model_switches == 0


async def test_a1111_options_loads_model_now(make: Factory) -> None:
    sim, client = await make()
    r = await client.post(OPTIONS, json={"sd_model_checkpoint": SDXL})
    assert r.status_code == 200 and r.json() is None
    assert sim.loaded_checkpoint == SDXL and sim.model_switches == 1
    full = (await client.get(OPTIONS)).json()
    assert full["sd_model_checkpoint"] == SDXL and full["samples_format"] == "png"
    assert (await client.post(OPTIONS, json=full)).json() is None  # Open WebUI posts it all back
    assert sim.model_switches == 1
    bad = await client.post(OPTIONS, json={"sd_model_checkpoint": "x"})
    assert bad.status_code == 500
    assert bad.json() == {"error": "RuntimeError", "detail": "", "body": "", "errors": "model 'x' not found"}


async def test_forge_options_defers_load_to_next_job(make: Factory) -> None:
    sim, client = await make(flavour="forge")
    assert (await client.post(OPTIONS, json={"sd_model_checkpoint": SDXL})).json() is None
    assert sim.loaded_checkpoint == SD15 and sim.model_switches == 0
    await gen(client, steps=1)
    assert sim.loaded_checkpoint == SDXL and sim.model_switches == 1


async def test_model_lists(make: Factory) -> None:
    _, client = await make()
    first = (await client.get("/sdapi/v1/sd-models")).json()[0]
    assert first["title"] == SD15 and first["model_name"] == "v1-5-pruned-emaonly" and first["hash"] == "6ce0161689"
    assert first["sha256"].startswith("6ce0161689") and len(first["sha256"]) == 64 and first["config"] is None
    samplers = {s["name"] for s in (await client.get("/sdapi/v1/samplers")).json()}
    assert {"DPM++ 2M", "Euler a", "Euler", "DPM++ SDE"} <= samplers
    simple = dict(name="simple", label="Simple", aliases=None, default_rho=-1.0, need_inner_model=False)
    assert simple in (await client.get("/sdapi/v1/schedulers")).json()
    assert "R-ESRGAN 4x+" in {u["name"] for u in (await client.get("/sdapi/v1/upscalers")).json()}
    assert (await client.get("/sdapi/v1/sd-vae")).status_code == 200
    assert (await client.get("/sdapi/v1/sd-modules")).json() == {"detail": "Not Found"}


async def test_forge_lists_modules(make: Factory) -> None:
    _, client = await make(flavour="forge")
    names = [m["model_name"] for m in (await client.get("/sdapi/v1/sd-modules")).json()]
    assert names == ["ae.safetensors", "clip_l.safetensors", "t5xxl_fp16.safetensors"]
    assert (await client.get("/sdapi/v1/sd-vae")).status_code == 404


# ----- img2img, extras, png-info -----------------------------------------------------------


@pytest.mark.parametrize(("flavour", "expected"), [("a1111", A1111_404), ("forge", {"detail": "Init image not found"})])
async def test_img2img_without_init_image(make: Factory, flavour: str, expected: dict[str, Any]) -> None:
    _, client = await make(flavour=flavour)
    for body in ({"prompt": "x"}, {"prompt": "x", "init_images": []}):
        r = await client.post(IMG2IMG, json=body)
        assert r.status_code == 404 and r.json() == expected


@pytest.mark.parametrize("flavour", ["a1111", "forge"])
async def test_img2img_bad_inputs_are_500(make: Factory, flavour: str) -> None:
    _, client = await make(flavour=flavour)
    r = await client.post(IMG2IMG, json={"init_images": ["not base64 at all!"]})
    assert r.status_code == 500 and r.json()["detail"] == "Invalid encoded image"
    assert ("errors" in r.json()) == (flavour == "a1111")
    r = await client.post(IMG2IMG, json={"init_images": ["https://example.com/a.png"]})
    assert r.status_code == 500 and r.json()["detail"] == "Requests not allowed"


async def test_img2img_accepts_data_uri_and_depends_on_input(make: Factory) -> None:
    _, client = await make()
    red = b64_png(Image.new("RGB", (64, 64), (255, 0, 0)))
    blue = b64_png(Image.new("RGB", (64, 64), (0, 0, 255)))
    req: dict[str, Any] = dict(prompt="p", seed=9, steps=1, width=128, height=96, denoising_strength=0.5)
    a, info = await gen(client, IMG2IMG, **req, init_images=[f"data:image/png;base64,{red}"])
    b, _ = await gen(client, IMG2IMG, **req, init_images=[blue])
    assert png(a["images"][0]).size == (128, 96) and a["images"][0] != b["images"][0]
    assert a["parameters"]["init_images"] is None
    assert "Denoising strength: 0.5" in info["infotexts"][0]


async def test_extras_upscale_and_unknown_upscaler(make: Factory) -> None:
    _, client = await make()
    src = b64_png(render_image("s", 1, 64, 48))
    r = await client.post(EXTRAS, json={"image": src, "upscaling_resize": 2, "upscaler_1": "R-ESRGAN 4x+"})
    assert r.status_code == 200 and set(r.json()) == {"html_info", "image"}
    assert png(r.json()["image"]).size == (128, 96)
    r = await client.post(EXTRAS, json={"image": src, "upscaler_1": "Magic 9x"})
    assert r.status_code == 500 and r.json()["errors"] == "could not find upscaler named Magic 9x"
    r = await client.post(EXTRAS, json={"image": "%%%", "upscaler_1": "Lanczos"})
    assert r.status_code == 500 and r.json()["detail"] == "Invalid encoded image"


async def test_png_info_reads_parameters(make: Factory) -> None:
    _, client = await make()
    made, info = await gen(client, prompt="owl", steps=2, seed=4)
    body = (await client.post("/sdapi/v1/png-info", json={"image": made["images"][0]})).json()
    assert body["info"] == info["infotexts"][0]
    assert body["parameters"]["Prompt"] == "owl" and body["parameters"]["Seed"] == "4"
    assert "parameters" not in body["items"]


# ----- errors, auth, faults ----------------------------------------------------------------


async def test_validation_422_a1111_pydantic_v1(make: Factory) -> None:
    _, client = await make()
    r = await client.post(TXT2IMG, json={"steps": "abc"})
    assert r.status_code == 422
    error = {"loc": ["body", "steps"], "msg": "value is not a valid integer", "type": "type_error.integer"}
    assert r.json() == {"detail": [error]}
    await gen(client, steps="2", cfg_scale="7")  # pydantic coerces numeric strings


async def test_validation_422_forge_pydantic_v2(make: Factory) -> None:
    _, client = await make(flavour="forge")
    r = await client.post(TXT2IMG, json={"steps": "abc", "cfg_scale": [1]})
    assert r.status_code == 422
    msg = "Input should be a valid integer, unable to parse string as an integer"
    steps = {"type": "int_parsing", "loc": ["body", "steps"], "msg": msg, "input": "abc"}
    cfg = {"type": "float_type", "loc": ["body", "cfg_scale"], "msg": "Input should be a valid number", "input": [1]}
    assert r.json() == {"detail": [steps, cfg]}


@pytest.mark.parametrize("flavour", ["a1111", "forge"])
async def test_basic_auth(make: Factory, flavour: str) -> None:
    sim, client = await make(flavour=flavour, auth=("user", "pw"))
    missing = await client.get("/sdapi/v1/sd-models")
    wrong = await client.get("/sdapi/v1/sd-models", auth=("user", "nope"))
    right = await client.get("/sdapi/v1/sd-models", auth=("user", "pw"))
    assert missing.status_code == wrong.status_code == 401 and right.status_code == 200
    assert missing.json()["detail"] == "Not authenticated"
    detail = "Incorrect username or password"
    if flavour == "a1111":
        assert wrong.json() == {"error": "HTTPException", "detail": detail, "body": "", "errors": ""}
    else:
        assert wrong.json() == {"detail": detail}
    assert [r.auth_ok for r in sim.requests] == [False, False, True]
    assert (await client.post(TXT2IMG, json={"steps": 1})).status_code == 401
    assert sim.completed_jobs == 0


async def test_fail_next_injects_answers(make: Factory) -> None:
    sim, client = await make()
    sim.fail_next(TXT2IMG, 503, {"error": "Busy"}, times=2)
    for _ in range(2):
        r = await client.post(TXT2IMG, json={"steps": 1})
        assert r.status_code == 503 and r.json() == {"error": "Busy"}
    await gen(client, steps=1)
    assert [r.json for r in sim.requests] == [{"steps": 1}] * 3


async def test_hang_next_is_dropped_on_stop(make: Factory) -> None:
    sim, client = await make()
    sim.hang_next(TXT2IMG)
    pending = asyncio.create_task(client.post(TXT2IMG, json={"steps": 1}))
    await sim.wait_for_requests(1)
    await sim.stop()
    with pytest.raises(httpx.TransportError):
        await pending
