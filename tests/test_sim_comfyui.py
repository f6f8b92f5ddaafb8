"""Issue 13 item 13: the ComfyUI simulator says what ComfyUI v0.3.64 does (server.py, main.py, execution.py),
checked with a plain aiohttp client, as a script or the web UI would talk to it."""

from __future__ import annotations

import asyncio
import io
import json
import struct
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from PIL import Image

from adapters.backends.comfyui_graph import load_workflow
from simulators.comfyui import ComfyUISimulator
from tests.fakes import png

pytestmark = pytest.mark.backends

Frame = tuple[str, Any]  # ("text", message) or ("bytes", (event, metadata, image))


@pytest.fixture
async def sim() -> AsyncIterator[ComfyUISimulator]:
    simulator = ComfyUISimulator(seconds_per_step=0.002)
    await simulator.start()
    yield simulator
    await simulator.stop()


def graph(steps: int = 3, seed: int = 1, width: int = 64, height: int = 64, **changes: Any) -> dict[str, Any]:
    g = load_workflow("sd_txt2img")
    g["3"]["inputs"] |= {"steps": steps, "seed": seed}
    g["5"]["inputs"] |= {"width": width, "height": height}
    g["6"]["inputs"]["text"] = "a lighthouse"
    for node_id, inputs in changes.items():
        g[node_id]["inputs"] |= inputs
    return g


class Client:
    """One WebSocket client (like the web UI) that records every frame."""

    def __init__(self, session: aiohttp.ClientSession, url: str, sid: str) -> None:
        self.session, self.url, self.sid = session, url, sid
        self.frames: list[Frame] = []
        self.changed = asyncio.Event()
        self.ws: aiohttp.ClientWebSocketResponse | None = None
        self.task: asyncio.Task[None] | None = None

    async def open(self, metadata: bool) -> Client:
        self.ws = await self.session.ws_connect(f"{self.url}/ws?clientId={self.sid}")
        if metadata:
            await self.ws.send_str(json.dumps({"type": "feature_flags", "data": {"supports_preview_metadata": True}}))
        self.task = asyncio.create_task(self._read())
        await self.wait(lambda: any(k == "text" and m["type"] == "status" for k, m in self.frames))
        if metadata:
            await self.wait(lambda: any(k == "text" and m["type"] == "feature_flags" for k, m in self.frames))
        return self

    async def _read(self) -> None:
        assert self.ws is not None
        async for message in self.ws:
            if message.type == aiohttp.WSMsgType.TEXT:
                self.frames.append(("text", json.loads(message.data)))
            elif message.type == aiohttp.WSMsgType.BINARY:
                event, second = struct.unpack(">II", message.data[:8])
                meta = json.loads(message.data[8 : 8 + second]) if event == 4 else None
                self.frames.append(("bytes", (event, meta, message.data[8 + second if event == 4 else 8 :])))
            self.changed.set()

    async def wait(self, condition: Any, timeout: float = 5.0) -> None:  # noqa: ASYNC109
        async with asyncio.timeout(timeout):
            while not condition():
                self.changed.clear()
                await self.changed.wait()

    async def until_done(self, prompt_id: str) -> list[Frame]:
        def done() -> bool:
            return any(k == "text" and m["type"] == "executing" and m["data"] == {"node": None, "prompt_id": prompt_id}
                       for k, m in self.frames)  # fmt: skip

        await self.wait(done)
        return self.frames

    def texts(self, kind: str | None = None) -> list[dict[str, Any]]:
        return [m for k, m in self.frames if k == "text" and (kind is None or m["type"] == kind)]


@pytest.fixture
async def http(sim: ComfyUISimulator) -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


async def post(http: aiohttp.ClientSession, sim: ComfyUISimulator, body: dict[str, Any]) -> tuple[int, Any]:
    async with http.post(f"{sim.url}/prompt", json=body) as response:
        return response.status, await response.json()


async def test_preview_before_progress_with_metadata_and_512_px_jpeg(
    sim: ComfyUISimulator, http: aiohttp.ClientSession
) -> None:
    client = await Client(http, sim.url, "me").open(metadata=True)
    _, body = await post(http, sim, {"prompt": graph(width=1024, height=768), "client_id": "me"})
    frames = await client.until_done(body["prompt_id"])
    order = [("preview" if k == "bytes" else m["type"]) for k, m in frames if k == "bytes" or m["type"] == "progress"]
    assert order == ["preview", "progress"] * 3
    event, meta, image = next(f[1] for f in frames if f[0] == "bytes")
    assert event == 4 and meta["prompt_id"] == body["prompt_id"] and meta["image_type"] == "image/jpeg"
    assert {"node_id", "display_node_id", "parent_node_id", "real_node_id"} <= set(meta)
    with Image.open(io.BytesIO(image)) as picture:
        assert picture.format == "JPEG" and max(picture.size) == 512


async def test_status_comes_before_the_terminal_executing(sim: ComfyUISimulator, http: aiohttp.ClientSession) -> None:
    client = await Client(http, sim.url, "me").open(metadata=True)
    _, body = await post(http, sim, {"prompt": graph(), "client_id": "me"})
    texts = [m["type"] for k, m in await client.until_done(body["prompt_id"]) if k == "text"]
    assert texts[-2:] == ["status", "executing"]
    assert texts.index("execution_start") < texts.index("execution_cached") < texts.index("executing")


async def test_nodes_run_in_dependency_order(sim: ComfyUISimulator, http: aiohttp.ClientSession) -> None:
    client = await Client(http, sim.url, "me").open(metadata=False)
    _, body = await post(http, sim, {"prompt": graph(), "client_id": "me"})
    await client.until_done(body["prompt_id"])
    ran = [m["data"]["node"] for m in client.texts("executing") if m["data"]["node"] is not None]
    assert ran == ["4", "5", "7", "6", "3", "8", "9"]  # ExecutionList.ux_friendly_pick_node on this graph


async def test_a_prompt_whose_client_has_no_socket_runs_and_the_queue_goes_on(
    sim: ComfyUISimulator, http: aiohttp.ClientSession
) -> None:
    _, ghost = await post(http, sim, {"prompt": graph(seed=5), "client_id": "nobody-listens"})
    _, after = await post(http, sim, {"prompt": graph(seed=6)})
    assert (await sim.wait_for_history(ghost["prompt_id"]))["status"]["status_str"] == "success"
    assert (await sim.wait_for_history(after["prompt_id"]))["status"]["status_str"] == "success"


async def test_a_prompt_without_client_id_broadcasts_progress_and_plain_previews(
    sim: ComfyUISimulator, http: aiohttp.ClientSession
) -> None:
    client = await Client(http, sim.url, "watcher").open(metadata=True)
    _, body = await post(http, sim, {"prompt": graph()})
    await sim.wait_for_history(body["prompt_id"])
    await client.wait(lambda: len(client.texts("progress")) == 3)
    assert all(m["data"]["prompt_id"] == body["prompt_id"] for m in client.texts("progress"))
    assert [f[1][0] for f in client.frames if f[0] == "bytes"] == [1, 1, 1]  # no metadata for sid None
    assert not client.texts("executing") and not client.texts("execution_start")


async def test_repeated_prompt_is_cached(sim: ComfyUISimulator, http: aiohttp.ClientSession) -> None:
    client = await Client(http, sim.url, "me").open(metadata=True)
    _, first = await post(http, sim, {"prompt": graph(), "client_id": "me"})
    await client.until_done(first["prompt_id"])
    client.frames.clear()
    _, again = await post(http, sim, {"prompt": graph(), "client_id": "me"})
    await client.until_done(again["prompt_id"])
    cached = client.texts("execution_cached")[0]["data"]["nodes"]
    assert sorted(cached) == sorted(graph())
    assert not client.texts("progress") and client.texts("executed")
    history = (await sim.wait_for_history(again["prompt_id"]))["outputs"]
    assert history == (await sim.wait_for_history(first["prompt_id"]))["outputs"]
    client.frames.clear()
    _, other_seed = await post(http, sim, {"prompt": graph(seed=2), "client_id": "me"})
    await client.until_done(other_seed["prompt_id"])
    assert sorted(client.texts("execution_cached")[0]["data"]["nodes"]) == ["4", "5", "6", "7"]


async def test_a_runtime_error_in_any_node(sim: ComfyUISimulator, http: aiohttp.ClientSession) -> None:
    client = await Client(http, sim.url, "me").open(metadata=False)
    sim.fail_node("VAEDecode", "RuntimeError", "bad vae")
    _, body = await post(http, sim, {"prompt": graph(), "client_id": "me"})
    await client.until_done(body["prompt_id"])
    error = client.texts("execution_error")[0]["data"]
    assert error["node_id"] == "8" and error["node_type"] == "VAEDecode" and error["exception_type"] == "RuntimeError"
    assert error["exception_message"] == "bad vae\n" and set(error["current_inputs"]) == {"samples", "vae"}
    assert "timestamp" in error and isinstance(error["current_outputs"], list) and error["executed"]
    assert not client.texts("execution_success")


async def test_execution_interrupted_goes_only_to_the_owner(sim: ComfyUISimulator, http: aiohttp.ClientSession) -> None:
    sim.executor.seconds_per_step = 0.02
    owner = await Client(http, sim.url, "owner").open(metadata=True)
    other = await Client(http, sim.url, "other").open(metadata=True)
    _, body = await post(http, sim, {"prompt": graph(steps=200), "client_id": "owner"})
    await owner.wait(lambda: bool(owner.texts("progress")))
    async with http.post(f"{sim.url}/interrupt", json={"prompt_id": "someone-else"}) as response:
        assert response.status == 200
    async with http.post(f"{sim.url}/api/interrupt", json={"prompt_id": body["prompt_id"]}) as response:
        assert response.status == 200
    await owner.until_done(body["prompt_id"])
    assert owner.texts("execution_interrupted") and not other.texts("execution_interrupted")
    assert len(owner.texts("progress")) < 200


async def _bad(http: aiohttp.ClientSession, sim: ComfyUISimulator, g: dict[str, Any]) -> dict[str, Any]:
    status, body = await post(http, sim, {"prompt": g})
    assert status == 400
    return dict(body)


async def test_error_bodies_as_validate_prompt_writes_them(sim: ComfyUISimulator, http: aiohttp.ClientSession) -> None:
    body = await _bad(http, sim, graph(steps=0))
    assert body["error"]["type"] == "prompt_outputs_failed_validation" and body["error"]["details"] == ""
    (item,) = body["node_errors"]["3"]["errors"]
    assert item["message"] == "Value 0 smaller than min of 1" and item["details"] == "steps"
    assert item["extra_info"]["received_value"] == 0 and body["node_errors"]["3"]["dependent_outputs"] == ["9"]

    status, ok = await post(http, sim, {"prompt": graph(**{"3": {"steps": "4"}})})  # strings convert
    assert status == 200 and ok["node_errors"] == {}
    item = (await _bad(http, sim, graph(**{"3": {"steps": "four"}})))["node_errors"]["3"]["errors"][0]
    assert item["type"] == "invalid_input_type" and item["message"] == "Failed to convert an input value to a INT value"

    mismatch = graph(**{"8": {"samples": ["4", 0]}})
    item = (await _bad(http, sim, mismatch))["node_errors"]["8"]["errors"][0]
    assert (
        item["type"] == "return_type_mismatch"
        and item["details"] == "samples, received_type(MODEL) mismatch input_type(LATENT)"
    )

    unknown = graph()
    unknown["8"]["class_type"] = "NoSuchNode"
    error = (await _bad(http, sim, unknown))["error"]
    assert error == {
        "type": "invalid_prompt", "message": "Cannot execute because node NoSuchNode does not exist.",
        "details": "Node ID '#8'", "extra_info": {},
    }  # fmt: skip


async def test_upload_view_object_info_and_image_size(sim: ComfyUISimulator, http: aiohttp.ClientSession) -> None:
    form = aiohttp.FormData()
    form.add_field("image", png(32, 32), filename="src.png", content_type="image/png")
    form.add_field("subfolder", "bot")
    async with http.post(f"{sim.url}/upload/image", data=form) as response:
        assert await response.json() == {"name": "src.png", "subfolder": "bot", "type": "input"}
    async with http.get(f"{sim.url}/object_info") as response:
        info = await response.json()
    assert "bot/src.png" not in info["LoadImage"]["input"]["required"]["image"][0]  # only the top folder is listed
    loads = graph()
    loads["10"] = {"class_type": "LoadImage", "inputs": {"image": "bot/src.png"}}
    loads["11"] = {"class_type": "PreviewImage", "inputs": {"images": ["10", 0]}}
    assert (await post(http, sim, {"prompt": loads}))[0] == 200  # VALIDATE_INPUTS: the file exists
    loads["10"]["inputs"]["image"] = "bot/missing.png"
    item = (await _bad(http, sim, {k: v for k, v in loads.items() if k in ("10", "11")}))["node_errors"]["10"]
    assert item["errors"][0]["details"] == "image - Invalid image file: bot/missing.png"
    assert {"res_multistep", "er_sde", "uni_pc_bh2"} <= set(info["KSampler"]["input"]["required"]["sampler_name"][0])
    assert {"kl_optimal", "linear_quadratic", "beta"} <= set(info["KSampler"]["input"]["required"]["scheduler"][0])
    _, body = await post(http, sim, {"prompt": graph(width=96, height=64)})
    outputs = (await sim.wait_for_history(body["prompt_id"]))["outputs"]["9"]["images"][0]
    params = {"filename": outputs["filename"], "subfolder": "", "type": "output"}
    async with http.get(f"{sim.url}/view", params=params) as response:
        with Image.open(io.BytesIO(await response.read())) as picture:
            assert picture.size == (96, 64) and picture.format == "PNG"
    async with http.get(f"{sim.url}/view", params=params | {"preview": "jpeg;80"}) as response:
        assert response.content_type == "image/jpeg"
