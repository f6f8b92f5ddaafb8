"""A strict ComfyUI stand-in (shared/reference/backends.md §4): routes with and without `/api`, one prompt worker
ordered by `number`, clientId-scoped WebSocket events in the real order, binary previews (plain and metadata),
`{}` history until done, 400 `node_errors` against a small `object_info`, 403 on a mismatched `Origin`.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import json
import logging
import struct
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from aiohttp import WSMsgType, web

from simulators.comfyui_nodes import object_info, validate
from simulators.images import encode_jpeg, encode_png, partial_image, render_image, tint
from simulators.serving import start_app

log = logging.getLogger(__name__)


@dataclass
class _Prompt:
    number: int
    prompt_id: str
    graph: dict[str, Any]
    client_id: str | None
    interrupted: bool = False


@dataclass
class _Socket:
    ws: web.WebSocketResponse
    metadata: bool = False
    first: bool = True


@dataclass
class RecordedRequest:
    method: str
    path: str
    headers: dict[str, str]
    body: Any = None


@dataclass
class ComfyUISimulator:
    """ComfyUI on loopback. `seconds_per_step` paces sampling; `previews` is `--preview-method` on or off."""

    seconds_per_step: float = 0.005
    previews: bool = True
    requests: list[RecordedRequest] = field(default_factory=list)
    url: str = ""

    def __post_init__(self) -> None:
        self.inputs: dict[str, bytes] = {}
        self.outputs: dict[str, bytes] = {}
        self.history: dict[str, dict[str, Any]] = {}
        self.sockets: dict[str, _Socket] = {}
        self.running: _Prompt | None = None
        self.started = asyncio.Event()
        self.fail_next_execution: str | None = None
        self._heap: list[tuple[int, str]] = []
        self._pending: dict[str, _Prompt] = {}
        self._numbers = itertools.count()
        self._queued = asyncio.Condition()
        self._runner: web.AppRunner | None = None
        self._worker: asyncio.Task[None] | None = None
        self._counter = itertools.count(1)

    # ---- lifecycle ---------------------------------------------------------------------------

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        app = web.Application(middlewares=[self._origin_check, self._record])
        routes = [
            web.post("/prompt", self._post_prompt),
            web.get("/prompt", self._get_prompt),
            web.get("/queue", self._get_queue),
            web.post("/queue", self._post_queue),
            web.post("/interrupt", self._interrupt),
            web.get("/history/{id}", self._history),
            web.get("/view", self._view),
            web.post("/upload/image", self._upload),
            web.get("/object_info", self._object_info),
            web.get("/models/checkpoints", self._checkpoints),
            web.get("/system_stats", self._system_stats),
            web.get("/ws", self._ws),
        ]
        for prefix in ("", "/api"):
            app.add_routes([web.route(r.method, prefix + r.path, r.handler) for r in routes])
        self._runner, self.url = await start_app(app, host, port)
        self._worker = asyncio.get_running_loop().create_task(self._prompt_worker(), name="comfyui-sim-worker")
        return self.url

    async def stop(self) -> None:
        if self._worker is not None:
            self._worker.cancel()
            await asyncio.wait([self._worker])
            self._worker = None
        for socket in list(self.sockets.values()):
            await socket.ws.close()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def wait_for_pending(self, count: int, timeout: float = 5.0) -> None:  # noqa: ASYNC109 (public API)
        """Return once ``count`` prompts wait in the queue."""
        async with asyncio.timeout(timeout), self._queued:
            await self._queued.wait_for(lambda: len(self._pending) >= count)

    def info(self) -> dict[str, Any]:
        return object_info(list(self.inputs))

    # ---- middleware --------------------------------------------------------------------------

    @web.middleware
    async def _origin_check(self, request: web.Request, handler: Any) -> web.StreamResponse:
        origin = request.headers.get("Origin")
        host = request.headers.get("Host", "")
        loopback = host.startswith(("127.0.0.1", "localhost", "[::1]"))
        if loopback and origin is not None and origin.split("://", 1)[-1] != host:
            log.warning("request with non matching host and origin %s != %s, returning 403", host, origin)
            return web.Response(status=403)
        result: web.StreamResponse = await handler(request)
        return result

    @web.middleware
    async def _record(self, request: web.Request, handler: Any) -> web.StreamResponse:
        body: Any = None
        if request.content_type == "application/json" and request.can_read_body:
            body = await request.json()
        self.requests.append(RecordedRequest(request.method, request.path, dict(request.headers), body))
        result: web.StreamResponse = await handler(request)
        return result

    # ---- routes ------------------------------------------------------------------------------

    async def _post_prompt(self, request: web.Request) -> web.Response:
        body = await request.json()
        problem = validate(body.get("prompt"), self.info())
        if problem is not None:
            error, node_errors = problem
            return web.json_response({"error": error, "node_errors": node_errors}, status=400)
        number = -next(self._numbers) if body.get("front") else next(self._numbers)
        prompt = _Prompt(number, str(body.get("prompt_id") or uuid.uuid4()), body["prompt"], body.get("client_id"))
        async with self._queued:
            self._pending[prompt.prompt_id] = prompt
            heapq.heappush(self._heap, (number, prompt.prompt_id))
            self._queued.notify_all()
        await self._broadcast_status()
        return web.json_response({"prompt_id": prompt.prompt_id, "number": number, "node_errors": {}})

    async def _get_prompt(self, request: web.Request) -> web.Response:
        return web.json_response({"exec_info": {"queue_remaining": self._remaining()}})

    async def _get_queue(self, request: web.Request) -> web.Response:
        def row(p: _Prompt) -> list[Any]:
            return [p.number, p.prompt_id, p.graph, {"client_id": p.client_id}, ["9"]]

        running = [row(self.running)] if self.running else []
        return web.json_response({"queue_running": running, "queue_pending": [row(p) for p in self._pending.values()]})

    async def _post_queue(self, request: web.Request) -> web.Response:
        body = await request.json()
        doomed = list(self._pending) if body.get("clear") else [str(i) for i in body.get("delete", [])]
        for prompt_id in doomed:
            self._pending.pop(prompt_id, None)
        await self._broadcast_status()
        return web.Response(status=200)

    async def _interrupt(self, request: web.Request) -> web.Response:
        body = await request.json() if request.can_read_body else {}
        target = (body or {}).get("prompt_id")
        if self.running is not None and target in (None, self.running.prompt_id):
            self.running.interrupted = True
        return web.Response(status=200)

    async def _history(self, request: web.Request) -> web.Response:
        prompt_id = request.match_info["id"]
        entry = self.history.get(prompt_id)
        return web.json_response({prompt_id: entry} if entry else {})

    async def _view(self, request: web.Request) -> web.Response:
        name = request.query.get("filename", "")
        if "/" in name or ".." in name:
            return web.Response(status=400)
        folder = self.outputs if request.query.get("type", "output") == "output" else self.inputs
        data = folder.get(name)
        return web.Response(body=data, content_type="image/png") if data else web.Response(status=404)

    async def _upload(self, request: web.Request) -> web.Response:
        form = await request.post()
        image = form.get("image")
        if not isinstance(image, web.FileField):
            return web.Response(status=400)
        name, data = image.filename, image.file.read()
        overwrite = str(form.get("overwrite", "")).lower() in ("true", "1")
        base, counter = name, 1
        while not overwrite and name in self.inputs and self.inputs[name] != data:
            stem, _, ext = base.rpartition(".")
            name, counter = f"{stem} ({counter}).{ext}", counter + 1
        self.inputs[name] = data
        return web.json_response({"name": name, "subfolder": "", "type": str(form.get("type", "input"))})

    async def _object_info(self, request: web.Request) -> web.Response:
        return web.json_response(self.info())

    async def _checkpoints(self, request: web.Request) -> web.Response:
        return web.json_response(self.info()["CheckpointLoaderSimple"]["input"]["required"]["ckpt_name"][0])

    async def _system_stats(self, request: web.Request) -> web.Response:
        system = {"os": "posix", "comfyui_version": "0.3.64", "python_version": "3.11"}
        return web.json_response({"system": system, "devices": [{"name": "cuda:0", "type": "cuda"}]})

    async def _ws(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(max_msg_size=0)
        await ws.prepare(request)
        sid = request.query.get("clientId") or uuid.uuid4().hex
        socket = self.sockets[sid] = _Socket(ws)
        status = {"status": {"exec_info": {"queue_remaining": self._remaining()}}, "sid": sid}
        await ws.send_str(json.dumps({"type": "status", "data": status}))
        async for message in ws:
            if message.type == WSMsgType.TEXT and socket.first:
                data = json.loads(message.data)
                if data.get("type") == "feature_flags":
                    socket.metadata = bool(data.get("data", {}).get("supports_preview_metadata"))
                    flags = {"supports_preview_metadata": True, "max_upload_size": 100 * 1024 * 1024}
                    await ws.send_str(json.dumps({"type": "feature_flags", "data": flags}))
            socket.first = False
        if self.sockets.get(sid) is socket:
            del self.sockets[sid]
        return ws

    # ---- execution ---------------------------------------------------------------------------

    def _remaining(self) -> int:
        return len(self._pending) + (1 if self.running else 0)

    async def _broadcast_status(self) -> None:
        status = {"status": {"exec_info": {"queue_remaining": self._remaining()}}}
        for socket in list(self.sockets.values()):
            await self._deliver(socket, json.dumps({"type": "status", "data": status}))

    async def _send(self, prompt: _Prompt, kind: str, data: dict[str, Any], broadcast: bool = False) -> None:
        targets = list(self.sockets.values()) if broadcast else [self.sockets[s] for s in [prompt.client_id] if s]
        text = json.dumps({"type": kind, "data": {**data, "prompt_id": prompt.prompt_id}})
        for socket in targets:
            await self._deliver(socket, text)

    async def _deliver(self, socket: _Socket, frame: str | bytes) -> None:
        """Send to one socket; a client that went away is the server's log line, not its crash."""
        if socket.ws.closed:
            return
        try:
            await (socket.ws.send_str(frame) if isinstance(frame, str) else socket.ws.send_bytes(frame))
        except (ConnectionError, RuntimeError) as exc:
            log.info("websocket send failed: %s", exc)

    async def _prompt_worker(self) -> None:
        while True:
            async with self._queued:
                await self._queued.wait_for(lambda: any(pid in self._pending for _, pid in self._heap))
                while True:
                    _, prompt_id = heapq.heappop(self._heap)
                    if prompt_id in self._pending:
                        break
                self.running = self._pending.pop(prompt_id)
            try:
                await self._execute(self.running)
            finally:
                self.running = None
                await self._broadcast_status()

    async def _execute(self, prompt: _Prompt) -> None:
        now = int(time.time() * 1000)
        messages: list[list[Any]] = [["execution_start", {"prompt_id": prompt.prompt_id, "timestamp": now}]]
        await self._send(prompt, "execution_start", {"timestamp": now})
        await self._send(prompt, "execution_cached", {"nodes": [], "timestamp": now})
        self.started.set()
        outputs: dict[str, Any] = {}
        status = "success"
        for node_id, node in prompt.graph.items():
            await self._send(prompt, "executing", {"node": node_id, "display_node": node_id})
            if node["class_type"] == "KSampler":
                if not await self._sample(prompt, node_id, node):
                    status = "error"
                    data = {"node_id": node_id, "node_type": "KSampler", "executed": [], "timestamp": now}
                    messages.append(["execution_interrupted", {**data, "prompt_id": prompt.prompt_id}])
                    await self._send(prompt, "execution_interrupted", data, broadcast=True)
                    break
                if self.fail_next_execution:
                    status, error = "error", self.fail_next_execution
                    self.fail_next_execution = None
                    data = {"node_id": node_id, "node_type": "KSampler", "exception_message": error}
                    data |= {"exception_type": "torch.OutOfMemoryError", "executed": [], "traceback": []}
                    messages.append(["execution_error", {**data, "prompt_id": prompt.prompt_id}])
                    await self._send(prompt, "execution_error", data)
                    break
            if node["class_type"] == "SaveImage":
                outputs[node_id] = {"images": self._save(prompt)}
                await self._send(
                    prompt, "executed", {"node": node_id, "display_node": node_id, "output": outputs[node_id]}
                )
        if status == "success":
            messages.append(["execution_success", {"prompt_id": prompt.prompt_id, "timestamp": now}])
            await self._send(prompt, "execution_success", {"timestamp": now})
        entry_status = {"status_str": status, "completed": status == "success", "messages": messages}
        self.history[prompt.prompt_id] = {
            "prompt": [prompt.number, prompt.prompt_id, prompt.graph, {"client_id": prompt.client_id}, list(outputs)],
            "outputs": outputs,
            "status": entry_status,
            "meta": {k: {"node_id": k, "display_node": k, "parent_node": None, "real_node_id": k} for k in outputs},
        }
        await self._send(prompt, "executing", {"node": None})

    def _params(self, prompt: _Prompt) -> tuple[str, int, int, int, int]:
        text, seed, width, height, batch = "", 0, 512, 512, 1
        for node in prompt.graph.values():
            inputs = node.get("inputs", {})
            if node["class_type"] == "KSampler":
                seed = int(inputs["seed"])
                positive = prompt.graph.get(str(inputs["positive"][0]), {})
                while positive.get("class_type") == "FluxGuidance":
                    positive = prompt.graph.get(str(positive["inputs"]["conditioning"][0]), {})
                text = str(positive.get("inputs", {}).get("text", ""))
            if node["class_type"] in ("EmptyLatentImage", "EmptySD3LatentImage", "ImageScale"):
                width, height = int(inputs["width"]), int(inputs["height"])
            batch = int(inputs.get("batch_size", inputs.get("amount", batch)))
        return text, seed, width, height, batch

    async def _sample(self, prompt: _Prompt, node_id: str, node: dict[str, Any]) -> bool:
        steps = int(node["inputs"]["steps"])
        text, seed, width, height, _ = self._params(prompt)
        final = render_image(text, seed, width, height)
        for step in range(1, steps + 1):
            await asyncio.sleep(self.seconds_per_step)
            if prompt.interrupted:
                return False
            data = {"value": step, "max": steps, "node": node_id}
            # progress goes to every socket when the prompt has no client_id (as execution.py does)
            await self._send(prompt, "progress", data, broadcast=prompt.client_id is None)
            if self.previews and prompt.client_id in self.sockets:
                await self._preview(prompt, node_id, encode_jpeg(partial_image(final, step / steps).resize((32, 32))))
        return True

    async def _preview(self, prompt: _Prompt, node_id: str, jpeg: bytes) -> None:
        socket = self.sockets[str(prompt.client_id)]
        if socket.metadata:
            meta = {"node_id": node_id, "prompt_id": prompt.prompt_id, "display_node_id": node_id}
            raw = json.dumps({**meta, "image_type": "image/jpeg"}).encode()
            frame = struct.pack(">II", 4, len(raw)) + raw + jpeg
        else:
            frame = struct.pack(">II", 1, 1) + jpeg
        await self._deliver(socket, frame)

    def _save(self, prompt: _Prompt) -> list[dict[str, str]]:
        text, seed, width, height, batch = self._params(prompt)
        source = next((n for n in prompt.graph.values() if n["class_type"] == "LoadImage"), None)
        images = []
        for index in range(batch):
            image = render_image(text, seed + index, width, height)
            if source is not None:
                image = tint(image, (40, 160, 200))
            name = f"imagebridge_{next(self._counter):05d}_.png"
            self.outputs[name] = encode_png(image, None)
            images.append({"filename": name, "subfolder": "", "type": "output"})
        return images


async def serve(port: int, host: str = "127.0.0.1", seconds_per_step: float = 0.05) -> None:
    """Run until cancelled (`imagebridge simulate comfyui`)."""
    sim = ComfyUISimulator(seconds_per_step=seconds_per_step)
    url = await sim.start(host, port)
    log.info("ComfyUI simulator on %s", url)
    try:
        await asyncio.Event().wait()
    finally:
        await sim.stop()
