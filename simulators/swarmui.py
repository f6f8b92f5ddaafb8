"""A strict SwarmUI stand-in, from its docs (docs/API.md, docs/APIRoutes/*.md) and source (src/WebAPI/API.cs,
T2IAPI.cs, BasicAPIFeatures.cs, ModelsAPI.cs; src/Text2Image/T2IEngine.cs).

- `POST /API/<Route>` with a JSON body (another content type: 400 `basic_api`); every route but `GetNewSession`
  needs `session_id` (missing: 400 `basic_api`; unknown or expired: 401 `invalid_session_id`). Routes are
  case-insensitive. A handler's own refusal is HTTP 200 with `{"error": "..."}`.
- With `token` set the server requires accounts: `GetNewSession` and `/View/...` need the `swarm_token` cookie.
- `WS /API/GenerateText2ImageWS`: the first frame is the input; then status, `gen_progress` (with data-URL
  previews), one flat `{"image", "batch_index", "request_id", "metadata"}` per image (a `View/...` path, or a data
  URL with `donotsave`), a mini-grid at batch index -1 when several images fit `mini_grid`, `discard_indices`,
  `{"socket_intention": "close"}`, a 2 s grace, a last status, close. Errors are `{"error": "..."}` frames.
- `InterruptAll` interrupts the generations of that session only (all the user's with `other_sessions`).
"""

from __future__ import annotations

import asyncio
import io
import itertools
import json
import logging
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import unquote

from aiohttp import WSMsgType, web
from PIL import Image

from simulators.images import average_colour, b64, encode_jpeg, encode_png, partial_image, render_image, tint
from simulators.serving import start_app
from simulators.swarmui_params import BACKEND_STATUS, CAN_RUN, PARAMS, ParamError, validate

log = logging.getLogger(__name__)
MODELS = [
    "OfficialStableDiffusion/sd_xl_base_1.0.safetensors",
    "Flux/flux1-dev.safetensors",
    "SD15/v1-5-pruned-emaonly.safetensors",
]
BAD_SESSION = {"error": "Invalid session ID. You may need to refresh the page.", "error_id": "invalid_session_id"}


@dataclass
class _Session:
    id: str
    user: str
    created: float
    interrupt: asyncio.Event = field(default_factory=asyncio.Event)


@dataclass
class SwarmUISimulator:
    """SwarmUI on loopback. `backends` is how many generations run at once (the rest wait for a backend)."""

    token: str | None = None
    models: list[str] = field(default_factory=lambda: list(MODELS))
    loras: list[str] = field(default_factory=lambda: ["Styles/pixel-art-xl.safetensors"])
    seconds_per_step: float = 0.002
    model_load_seconds: float = 0.0
    backends: int = 1
    previews: bool = True
    mini_grid: int = 1  # the user setting MaxImagesInMiniGrid (default 1: no grid)
    discard: list[int] = field(default_factory=list)  # batch indices a scoring extension refuses after the fact
    close_grace_seconds: float = 2.0
    session_ttl_seconds: float | None = None
    requests: list[dict[str, Any]] = field(default_factory=list)  # every generation input, as received
    routes: list[str] = field(default_factory=list)  # every API route called
    hold: asyncio.Event = field(default_factory=asyncio.Event)  # cleared: generations pause after their first step
    started: asyncio.Event = field(default_factory=asyncio.Event)  # set when a generation first runs
    backend_status: str = "running"  # a key of BACKEND_STATUS
    loaded: str | None = None
    url: str = ""

    def __post_init__(self) -> None:
        self.sessions: dict[str, _Session] = {}
        self.files: dict[str, bytes] = {}
        self.live = 0
        self.hold.set()
        self._requests = itertools.count(1)
        self._files = itertools.count(1)
        self._slots: asyncio.Semaphore | None = None
        self._runner: web.AppRunner | None = None

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        self._slots = asyncio.Semaphore(self.backends)
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/API/{route}", self._api)
        app.router.add_get("/View/{path:.*}", self._view)
        self._runner, self.url = await start_app(app, host, port)
        return self.url

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    def expire_sessions(self) -> None:
        """What a server restart or the idle-session cleanup does: every session id becomes unknown."""
        self.sessions.clear()

    # ---- routing (API.HandleAsyncRequest) ----------------------------------------------------------

    def _user(self, request: web.Request) -> str | None:
        if self.token is None:
            return "local"
        return "bot" if request.cookies.get("swarm_token") == self.token else None

    def _session(self, input_: dict[str, Any], request: web.Request) -> _Session | None:
        session_id = input_.get("session_id", request.headers.get("X-Session-ID"))
        session = self.sessions.get(str(session_id))
        ttl = self.session_ttl_seconds
        if session is not None and ttl is not None and time.monotonic() - session.created > ttl:
            self.sessions.pop(session.id, None)
            return None
        return session

    async def _api(self, request: web.Request) -> web.StreamResponse:
        route = request.match_info["route"].lower()
        self.routes.append(route)
        socket: web.WebSocketResponse | None = None
        if request.headers.get("Upgrade", "").lower() == "websocket":
            socket = web.WebSocketResponse(max_msg_size=64 * 1024 * 1024)
            await socket.prepare(request)
            first = await socket.receive()
            input_ = _parse(first.data) if first.type == WSMsgType.TEXT else None
        elif request.method == "POST":
            if request.content_type != "application/json":
                return web.json_response({"error_id": "basic_api", "error": "Wrong content type"}, status=400)
            input_ = _parse(await request.text())
        else:
            raise web.HTTPFound("/Error/NoGetAPI")
        if input_ is None:
            return await _reply(socket, 400, {"error_id": "basic_api", "error": "null input"})
        session: _Session | None = None
        if route not in ("getnewsession", "login"):
            if "session_id" not in input_ and "X-Session-ID" not in request.headers:
                return await _reply(socket, 400, {"error_id": "basic_api", "error": "missing session id"})
            session = self._session(input_, request)
            if session is None:
                return await _reply(socket, 401, BAD_SESSION)
        handlers = {"getnewsession": self._new_session, "listmodels": self._list_models,
                    "interruptall": self._interrupt_all, "getcurrentstatus": self._current_status,
                    "listt2iparams": self._list_params}  # fmt: skip
        if route == "generatetext2imagews":
            if socket is None:
                wrong = {"error_id": "bad_request_method", "error": "API route needs websocket, request is HTTP"}
                return web.json_response(wrong, status=400)
            assert session is not None
            await self._generate_ws(socket, session, input_)
            return socket
        handler = handlers.get(route)
        if handler is None:
            return await _reply(socket, 404 if socket else 400, {"error_id": "bad_route", "error": "Unknown API route"})
        return await _reply(socket, 200, handler(request, session, input_))

    # ---- plain routes ------------------------------------------------------------------------------

    def _new_session(self, request: web.Request, _: _Session | None, input_: dict[str, Any]) -> dict[str, Any]:
        user = self._user(request)
        if user is None:
            return {"error": "Invalid or unauthorized."}
        session = _Session(uuid.uuid4().hex.upper()[:40], user, time.monotonic())
        self.sessions[session.id] = session
        return {"session_id": session.id, "user_id": user, "output_append_user": True, "version": "0.9.7.0-sim",
                "server_id": "sim", "permissions": ["basic_image_generation", "fundamental_model_access"]}  # fmt: skip

    def _list_models(self, _: web.Request, __: _Session | None, input_: dict[str, Any]) -> dict[str, Any]:
        for name in ("path", "depth"):
            if name not in input_:
                return {"error": f"Missing required parameter '{name}'"}
        if input_.get("subtype", "Stable-Diffusion") not in ("Stable-Diffusion", "LoRA", "VAE", "Wildcards"):
            return {"error": "Invalid sub-type."}
        if input_.get("subtype", "Stable-Diffusion") != "Stable-Diffusion":
            return {"folders": [], "files": []}
        prefix, depth = str(input_["path"]).strip("/"), max(1, min(int(input_["depth"]), 20))
        prefix = f"{prefix}/" if prefix else ""
        files = [name for name in self.models if name.startswith(prefix) and name[len(prefix) :].count("/") < depth]
        folders = sorted({name[len(prefix) :].rsplit("/", 1)[0] for name in files if "/" in name[len(prefix) :]})
        described = [{"name": name, "title": name.rsplit("/", 1)[-1], "loaded": name == self.loaded,
                      "architecture": "stable-diffusion-xl-v1-base", "local": True} for name in files]  # fmt: skip
        return {"folders": folders, "files": described}

    def _list_params(self, _: web.Request, __: _Session | None, ___: dict[str, Any]) -> dict[str, Any]:
        described = [{"name": p.name, "id": key, "type": p.kind, "values": list(p.values) or None,
                      "min": p.low, "max": p.high} for key, p in PARAMS.items()]  # fmt: skip
        arch = "stable-diffusion-xl-v1-base"
        models = {"Stable-Diffusion": [[name, arch] for name in sorted(self.models)],
                  "LoRA": [[name, arch] for name in sorted(self.loras)], "VAE": []}  # fmt: skip
        return {"list": described, "groups": [], "models": models, "model_compat_classes": {}, "model_classes": {},
                "wildcards": [], "param_edits": None}  # fmt: skip

    def _interrupt_all(self, _: web.Request, session: _Session | None, input_: dict[str, Any]) -> dict[str, Any]:
        assert session is not None
        targets = (
            [s for s in self.sessions.values() if s.user == session.user] if input_.get("other_sessions") else [session]
        )
        for target in targets:
            target.interrupt.set()
        return {"success": True}

    def _current_status(self, _: web.Request, session: _Session | None, __: dict[str, Any]) -> dict[str, Any]:
        return self._status(0, 0, 0, 0)

    def _status(self, waiting: int, loading: int, backends: int, live: int) -> dict[str, Any]:
        return {"status": {"waiting_gens": waiting, "loading_models": loading, "waiting_backends": backends,
                           "live_gens": live},
                "backend_status": {"status": self.backend_status, "class": BACKEND_STATUS[self.backend_status][0],
                                   "message": BACKEND_STATUS[self.backend_status][1], "any_loading": loading > 0},
                "supported_features": ["comfyui", "refiners", "controlnet", "variation_seed"]}  # fmt: skip

    async def _view(self, request: web.Request) -> web.Response:
        if self._user(request) is None:
            return web.json_response({"error": "invalid or unauthorized", "error_id": "invalid_user"}, status=400)
        data = self.files.get(unquote(request.match_info["path"]))
        if data is None:
            return web.json_response({"error": "404, file not found", "error_id": "file_not_found"}, status=404)
        return web.Response(body=data, content_type="image/png")

    # ---- generation (T2IAPI.GenerateText2ImageWS / GenT2I_Internal) --------------------------------

    async def _generate_ws(self, ws: web.WebSocketResponse, session: _Session, input_: dict[str, Any]) -> None:
        self.requests.append(input_)
        if "images" not in input_:
            await ws.send_json({"error": "Missing required parameter 'images'"})
            await ws.close()
            return
        session.interrupt.clear()
        count = int(input_.get("images", 1))
        await ws.send_json(self._status(count, 0, 0, 0))
        try:
            await self._run(ws, session, input_)
        except ParamError as exc:
            await ws.send_json({"error": str(exc)})
        await ws.send_json({"socket_intention": "close"})
        await asyncio.sleep(self.close_grace_seconds)  # the real server waits 2 s for another request
        if not ws.closed:
            await ws.send_json(self._status(0, 0, 0, 0))
            await ws.close()

    async def _run(self, ws: web.WebSocketResponse, session: _Session, input_: dict[str, Any]) -> None:
        values = {key: validate(key, value, self.models) for key, value in input_.items() if key in PARAMS}
        if "model" not in values:
            raise ParamError("No model input given. Did your UI load properly?")
        if self.backend_status not in CAN_RUN:
            raise ParamError("No backends available!")  # BackendHandler: no backend can take the request
        count, request_id = int(values.get("images", 1)), str(next(self._requests))
        seed = int(values.get("seed", -1))
        seed = seed if seed >= 0 else int.from_bytes(uuid.uuid4().bytes[:4], "big")
        finished: list[Image.Image] = []
        assert self._slots is not None
        for index in range(count):
            if session.interrupt.is_set():
                break
            await ws.send_json(self._status(count - index, 0, 1, 0))
            async with self._slots:
                if self.loaded != values["model"]:
                    await ws.send_json(self._status(count - index, 1, 0, 0))
                    await asyncio.sleep(self.model_load_seconds)
                    self.loaded = values["model"]
                self.live += 1
                self.started.set()
                try:
                    await ws.send_json(self._status(count - index, 0, 0, 1))
                    image = await self._sample(
                        ws, session, values, *_seeds(values, seed, index), str(index), request_id
                    )
                finally:
                    self.live -= 1
            if image is None:
                await ws.send_json({"error": "Generation session interrupted."})
                break
            finished.append(image)
            await ws.send_json(self._output(image, str(index), request_id, values, _seeds(values, seed, index)[0]))
        if 1 < len(finished) <= self.mini_grid:
            await ws.send_json(self._output(_grid(finished), "-1", request_id, values, seed))
        await ws.send_json({"discard_indices": [i for i in self.discard if i < len(finished)]})

    async def _sample(
        self,
        ws: web.WebSocketResponse,
        session: _Session,
        values: dict[str, Any],
        seed: int,
        variation: int | None,
        index: str,
        rid: str,
    ) -> Image.Image | None:
        width, height = int(values.get("width", 512)), int(values.get("height", 512))
        strength = float(values.get("variationseedstrength", 0)) if variation is not None else 0.0
        final = render_image(str(values.get("prompt", "")), seed, width, height, subseed=variation,
                             subseed_strength=strength)  # fmt: skip
        if "initimage" in values:  # img2img: the result shows the input's colour, by the creativity asked for
            with Image.open(io.BytesIO(values["initimage"])) as init:
                colour = average_colour(init)
            final = tint(final, colour, 0.6 * (1 - float(values.get("initimagecreativity", 0.6))) + 0.2)
        steps = max(1, int(values.get("steps", 20)))
        for step in range(1, steps + 1):
            if session.interrupt.is_set():
                return None
            await asyncio.sleep(self.seconds_per_step)
            progress: dict[str, Any] = {
                "batch_index": index,
                "request_id": rid,
                "overall_percent": step / (steps + 1),
                "current_percent": step / steps,
            }
            if self.previews and (step % 4 == 1 or step == steps):
                preview = encode_jpeg(
                    partial_image(final, step / steps).resize((max(1, width // 8), max(1, height // 8)))
                )
                progress["preview"] = f"data:image/jpeg;base64,{b64(preview)}"
            await ws.send_json({"gen_progress": progress})
            if step == 1:
                await _either(self.hold, session.interrupt)
        return None if session.interrupt.is_set() else final

    def _output(self, image: Image.Image, index: str, rid: str, values: dict[str, Any], seed: int) -> dict[str, Any]:
        metadata = json.dumps(
            {
                "sui_image_params": {
                    "prompt": values.get("prompt", ""),
                    "seed": seed,
                    "model": values["model"],
                    "steps": values.get("steps", 20),
                }
            }
        )
        data = encode_png(image, None, {"parameters": metadata})
        if values.get("donotsave"):
            url = f"data:image/png;base64,{b64(data)}"
        else:
            day = datetime.now(UTC).strftime("%Y-%m-%d")
            prompt = "".join(c for c in str(values.get("prompt", ""))[:40] if c.isalnum() or c in " -_")
            url = f"View/local/raw/{day}/{next(self._files):04d}-{prompt}-{seed}.png"
            self.files[url.removeprefix("View/")] = data
        return {"image": url, "batch_index": index, "request_id": rid, "metadata": metadata}


def _seeds(values: dict[str, Any], seed: int, index: int) -> tuple[int, int | None]:
    """(seed, variation seed) of image `index`: the variation seed steps when it is in use, else the seed."""
    variation = values.get("variationseed")
    if variation is not None and float(values.get("variationseedstrength", 0)) > 0:
        return seed, int(variation) + index
    return seed + index, None


def _parse(text: str) -> dict[str, Any] | None:
    try:
        value = json.loads(text)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


async def _reply(socket: web.WebSocketResponse | None, status: int, body: dict[str, Any]) -> web.StreamResponse:
    """`YieldJsonOutput`: a JSON body with the status, or one frame then close on a WebSocket."""
    if socket is None:
        return web.json_response(body, status=status, headers={"Cache-Control": "no-store"})
    await socket.send_json(body)
    await socket.close()
    return socket


async def _either(first: asyncio.Event, second: asyncio.Event) -> None:
    waits = [asyncio.create_task(first.wait()), asyncio.create_task(second.wait())]
    try:
        await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in waits:
            task.cancel()


def _grid(images: list[Image.Image]) -> Image.Image:
    width, height = max(i.width for i in images), max(i.height for i in images)
    grid = Image.new("RGB", (width * len(images), height))
    for number, image in enumerate(images):
        grid.paste(image, (number * width, 0))
    return grid


async def serve(port: int, host: str = "127.0.0.1", token: str | None = None) -> None:
    """Run until cancelled (`imagebridge simulate swarmui`)."""
    sim = SwarmUISimulator(token=token, seconds_per_step=0.05)
    log.info("SwarmUI simulator on %s (%s)", await sim.start(host, port), "token required" if token else "open")
    try:
        await asyncio.Event().wait()
    finally:
        await sim.stop()
