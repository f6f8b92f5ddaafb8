"""A strict ComfyUI stand-in, built from ComfyUI v0.3.64's `server.py`, `main.py` and `execution.py`.

Routes with and without `/api`; one prompt worker ordered by `number`; `send(event, data, sid)` semantics (sid
None = every socket, an unknown sid = nobody, never an error); `status` on every queue change, before the
terminal `executing` null; feature-flag negotiation for metadata previews (512-px JPEG, quality 95);
validation errors as `validate_prompt` writes them; `{}` history until done; 403 on a mismatched `Origin`.
The execution itself is `simulators.comfyui_exec`. Checked side by side against a real ComfyUI 0.3.64 on CPU
(random-weight SD1.5 checkpoint, 64 px, 4 steps): the same message order for a first run, a cached re-run, a prompt
without client_id, a client_id without socket, and the same 400 bodies (tooltips aside).
"""

from __future__ import annotations

import asyncio
import heapq
import io
import json
import logging
import struct
import uuid
from dataclasses import dataclass, field
from typing import Any

from aiohttp import WSMsgType, web
from PIL import Image, ImageOps

from simulators.comfyui_crash import crashes, die
from simulators.comfyui_exec import Executor, Prompt
from simulators.comfyui_files import upload, view
from simulators.comfyui_nodes import CHECKPOINTS, MODEL_FOLDERS, execution_outputs, object_info, validate
from simulators.serving import start_app

log = logging.getLogger(__name__)
PREVIEW_SIZE = 512  # --preview-size default
SERVER_FLAGS = {"supports_preview_metadata": True, "max_upload_size": 100 * 1024 * 1024}


@dataclass
class _Socket:
    ws: web.WebSocketResponse
    flags: dict[str, Any] = field(default_factory=dict)


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
    feature_flags: bool = True  # False: a build from before feature-flag negotiation (plain previews only)
    jobs_api: bool = False  # True: newer master (/api/jobs/{id}/cancel; a client prompt_id must be a canonical UUID)
    requests: list[RecordedRequest] = field(default_factory=list)
    url: str = ""
    checkpoints: list[str] = field(default_factory=lambda: list(CHECKPOINTS))  # the models/checkpoints folder
    crash_texts: list[str] = field(default_factory=list)  # a prompt with one of these takes the process down
    crashes: int = 0

    def __post_init__(self) -> None:
        self.folders: dict[str, dict[str, bytes]] = {"input": {}, "output": {}, "temp": {}}
        self.history: dict[str, dict[str, Any]] = {}
        self.sockets: dict[str, _Socket] = {}
        self.running: Prompt | None = None
        self.client_id: str | None = None  # the running prompt's (server.client_id)
        self.last_node_id: str | None = None
        self.started = asyncio.Event()
        self.preview_owners: dict[bytes, str] = {}  # every preview image sent -> its prompt (for tests)
        self.executor = Executor(self._send, self._send_preview, self.folders.__getitem__)
        self._heap: list[tuple[float, int, Prompt]] = []
        self._number = 0
        self._ticket = 0
        self._queued = asyncio.Condition()
        self._runner: web.AppRunner | None = None
        self._worker: asyncio.Task[None] | None = None

    @property
    def inputs(self) -> dict[str, bytes]:
        return self.folders["input"]

    @property
    def outputs(self) -> dict[str, bytes]:
        return self.folders["output"]

    def fail_node(self, class_type: str, exception_type: str, message: str) -> None:
        """The next run of a node of this class raises (e.g. "torch.OutOfMemoryError", "Allocation on device")."""
        self.executor.fail[class_type] = (exception_type, message)

    # ---- lifecycle ---------------------------------------------------------------------------

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        self.executor.seconds_per_step, self.executor.previews = self.seconds_per_step, self.previews
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
            web.get("/object_info/{node_class}", self._object_info),
            web.get("/models/{folder}", self._models),
            web.get("/system_stats", self._system_stats),
            web.get("/ws", self._ws),
        ]
        for prefix in ("", "/api"):
            app.add_routes([web.route(r.method, prefix + r.path, r.handler) for r in routes])
        if self.jobs_api:
            app.add_routes([web.post("/api/jobs/{job_id}/cancel", self._cancel_job)])
        self._runner, self.url = await start_app(app, host, port)
        self._worker = asyncio.get_running_loop().create_task(self._prompt_worker(), name="comfyui-sim-worker")
        return self.url

    async def stop(self) -> None:
        if self._worker is not None:
            self._worker.cancel()
            await asyncio.wait([self._worker])
            self._worker = None
        await self.drop_sockets()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def drop_sockets(self) -> None:
        """Close every WebSocket (a proxy restart, or the bot's host going away); prompts keep running."""
        for socket in list(self.sockets.values()):
            await socket.ws.close()

    async def wait_for_pending(self, count: int, timeout: float = 5.0) -> None:  # noqa: ASYNC109 (public API)
        """Return once ``count`` prompts wait in the queue."""
        async with asyncio.timeout(timeout), self._queued:
            await self._queued.wait_for(lambda: len(self._heap) >= count)

    async def wait_for_history(self, prompt_id: str, timeout: float = 5.0) -> dict[str, Any]:  # noqa: ASYNC109
        async with asyncio.timeout(timeout), self._queued:
            await self._queued.wait_for(lambda: prompt_id in self.history)
        return self.history[prompt_id]

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
            try:
                body = await request.json()
            except ValueError:
                body = None
        self.requests.append(RecordedRequest(request.method, request.path, dict(request.headers), body))
        result: web.StreamResponse = await handler(request)
        return result

    # ---- routes ------------------------------------------------------------------------------

    async def _post_prompt(self, request: web.Request) -> web.Response:
        body = await request.json()
        if "number" in body:
            number = float(body["number"])
        else:
            number = -self._number if body.get("front") else self._number
            self._number += 1
        if "prompt" not in body:
            error = {"type": "no_prompt", "message": "No prompt provided", "details": "No prompt provided"}
            return web.json_response({"error": error | {"extra_info": {}}, "node_errors": {}}, status=400)
        graph, prompt_id = body["prompt"], str(body.get("prompt_id", uuid.uuid4()))
        if self.jobs_api and body.get("prompt_id") is not None and not _canonical_uuid(body["prompt_id"]):
            details = "prompt_id must be a UUID string in canonical lowercase hyphenated form"
            bad_id: dict[str, Any] = {"type": "invalid_prompt_id", "message": "prompt_id must be a valid UUID"}
            bad_id |= {"details": details, "extra_info": {}}
            return web.json_response({"error": bad_id, "node_errors": {}}, status=400)
        problem = validate(graph, list(self.inputs), self.checkpoints)
        extra_data = dict(body.get("extra_data") or {})
        if "client_id" in body:
            extra_data["client_id"] = body["client_id"]
        if problem is not None:
            log.warning("invalid prompt: %s", problem[0])
            return web.json_response({"error": problem[0], "node_errors": problem[1]}, status=400)
        prompt = Prompt(
            number, prompt_id, graph, extra_data, execution_outputs(graph, list(self.inputs), self.checkpoints)
        )
        async with self._queued:
            heapq.heappush(self._heap, (number, self._ticket, prompt))
            self._ticket += 1
            self._queued.notify_all()
        await self._queue_updated()
        return web.json_response({"prompt_id": prompt_id, "number": number, "node_errors": {}})

    async def _get_prompt(self, request: web.Request) -> web.Response:
        return web.json_response({"exec_info": {"queue_remaining": self._remaining()}})

    async def _get_queue(self, request: web.Request) -> web.Response:
        running = [self.running.row()] if self.running else []
        pending = [item[2].row() for item in self._heap]
        return web.json_response({"queue_running": running, "queue_pending": pending})

    async def _post_queue(self, request: web.Request) -> web.Response:
        body = await request.json()
        async with self._queued:
            if body.get("clear"):
                self._heap = []
            for prompt_id in body.get("delete", []):
                self._heap = [item for item in self._heap if item[2].prompt_id != prompt_id]
                heapq.heapify(self._heap)
        await self._queue_updated()
        return web.Response(status=200)

    async def _cancel_job(self, request: web.Request) -> web.Response:
        """Newer master: interrupt it if it is the running one, else dequeue it; idempotent."""
        job_id = request.match_info["job_id"]
        if self.running is not None and self.running.prompt_id == job_id:
            self.executor.interrupt_flag = True
            return web.json_response({"cancelled": True})
        async with self._queued:
            kept = [item for item in self._heap if item[2].prompt_id != job_id]
            cancelled, self._heap = len(kept) != len(self._heap), kept
            heapq.heapify(self._heap)
        if cancelled:
            await self._queue_updated()
        return web.json_response({"cancelled": cancelled})

    async def _interrupt(self, request: web.Request) -> web.Response:
        try:
            body = await request.json()
        except ValueError:
            body = {}
        target = body.get("prompt_id") if isinstance(body, dict) else None
        if not target or (self.running is not None and self.running.prompt_id == target):
            self.executor.interrupt_flag = True  # nodes.interrupt_processing()
        else:
            log.info("Prompt %s is not currently running, skipping interrupt", target)
        return web.Response(status=200)

    async def _history(self, request: web.Request) -> web.Response:
        prompt_id = request.match_info["id"]
        entry = self.history.get(prompt_id)
        return web.json_response({prompt_id: entry} if entry else {})

    async def _view(self, request: web.Request) -> web.Response:
        return view(self.folders, request.query)

    async def _upload(self, request: web.Request) -> web.Response:
        return upload(self.folders, await request.post())

    async def _object_info(self, request: web.Request) -> web.Response:
        info = object_info(list(self.inputs), self.checkpoints)
        wanted = request.match_info.get("node_class")
        if wanted is not None:
            return web.json_response({wanted: info[wanted]} if wanted in info else {})
        return web.json_response(info)

    async def _models(self, request: web.Request) -> web.Response:
        """`/models/{folder}`: the file names in one model folder; 404 for a folder the server does not know."""
        folder = request.match_info["folder"]
        if folder not in MODEL_FOLDERS:
            return web.Response(status=404)
        return web.json_response(list(self.checkpoints) if folder == "checkpoints" else [])

    async def _system_stats(self, request: web.Request) -> web.Response:
        system = {"os": "posix", "comfyui_version": "0.3.64", "python_version": "3.11", "embedded_python": False}
        return web.json_response({"system": system, "devices": [{"name": "cuda:0", "type": "cuda"}]})

    async def _ws(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(max_msg_size=0)
        await ws.prepare(request)
        sid = request.query.get("clientId", "")
        if sid:
            self.sockets.pop(sid, None)  # reusing an existing session
        else:
            sid = uuid.uuid4().hex
        socket = self.sockets[sid] = _Socket(ws)
        try:
            await self._send("status", {"status": self._queue_info(), "sid": sid}, sid)
            if self.client_id == sid and self.last_node_id is not None:
                await self._send("executing", {"node": self.last_node_id}, sid)
            first = True
            async for message in ws:
                if message.type == WSMsgType.TEXT:
                    try:
                        data = json.loads(message.data)
                    except ValueError:
                        continue
                    if first and self.feature_flags and isinstance(data, dict) and data.get("type") == "feature_flags":
                        socket.flags = dict(data.get("data") or {})
                        await self._send("feature_flags", dict(SERVER_FLAGS), sid)
                    first = False
        finally:
            self.sockets.pop(sid, None)
        return ws

    # ---- sending (server.py send / send_json / send_bytes) -----------------------------------

    def _targets(self, sid: str | None) -> list[_Socket]:
        if sid is None:
            return list(self.sockets.values())
        return [self.sockets[sid]] if sid in self.sockets else []

    async def _send(self, event: str, data: dict[str, Any], sid: str | None) -> None:
        text = json.dumps({"type": event, "data": data})
        for socket in self._targets(sid):
            await _deliver(socket, text)

    async def _send_preview(
        self, image: Image.Image, metadata: dict[str, Any], sid: str | None, with_metadata: bool
    ) -> None:
        """Event 4 (with metadata) where the socket asked for it, event 1 (plain JPEG) where it did not."""
        wants = sid is not None and sid in self.sockets and self.sockets[sid].flags.get("supports_preview_metadata")
        if with_metadata != bool(wants):
            return
        contained = ImageOps.contain(image, (PREVIEW_SIZE, PREVIEW_SIZE), Image.Resampling.BILINEAR)
        buffer = io.BytesIO()
        contained.save(buffer, format="JPEG", quality=95)
        self.preview_owners[buffer.getvalue()] = str(metadata.get("prompt_id"))
        if with_metadata:
            raw = json.dumps({**metadata, "image_type": "image/jpeg"}).encode()
            frame = struct.pack(">II", 4, len(raw)) + raw + buffer.getvalue()
        else:
            frame = struct.pack(">II", 1, 1) + buffer.getvalue()
        for socket in self._targets(sid):
            await _deliver(socket, frame)

    # ---- the prompt worker (main.py prompt_worker) -------------------------------------------

    def _remaining(self) -> int:
        return len(self._heap) + (1 if self.running else 0)

    def _queue_info(self) -> dict[str, Any]:
        return {"exec_info": {"queue_remaining": self._remaining()}}

    async def _queue_updated(self) -> None:
        await self._send("status", {"status": self._queue_info()}, None)

    async def _prompt_worker(self) -> None:
        while True:
            async with self._queued:
                await self._queued.wait_for(lambda: bool(self._heap))
                self.running = heapq.heappop(self._heap)[2]
            await self._queue_updated()
            prompt = self.running
            self.client_id = prompt.client_id
            self.started.set()
            if crashes(self.crash_texts, prompt):
                await die(self, prompt)
                continue
            try:
                success, messages, outputs = await self.executor.execute(prompt)
            finally:
                self.running = None
            status = {"status_str": "success" if success else "error", "completed": success, "messages": messages}
            meta = {k: {"node_id": k, "display_node": k, "parent_node": None, "real_node_id": k} for k in outputs}
            async with self._queued:
                self.history[prompt.prompt_id] = {
                    "prompt": prompt.row(), "outputs": outputs, "status": status, "meta": meta,
                }  # fmt: skip
                self._queued.notify_all()
            await self._queue_updated()
            if prompt.client_id is not None:
                await self._send("executing", {"node": None, "prompt_id": prompt.prompt_id}, prompt.client_id)


def _canonical_uuid(value: object) -> bool:
    try:
        return isinstance(value, str) and str(uuid.UUID(value)) == value
    except ValueError:
        return False


async def _deliver(socket: _Socket, frame: str | bytes) -> None:
    """send_socket_catch_exception: a client that went away is a log line, not a crash."""
    if socket.ws.closed:
        return
    try:
        await (socket.ws.send_str(frame) if isinstance(frame, str) else socket.ws.send_bytes(frame))
    except (ConnectionError, RuntimeError) as exc:
        log.warning("send error: %s", exc)


async def serve(port: int, host: str = "127.0.0.1", seconds_per_step: float = 0.05) -> None:
    """Run until cancelled (`imagebridge simulate comfyui`)."""
    sim = ComfyUISimulator(seconds_per_step=seconds_per_step)
    url = await sim.start(host, port)
    log.info("ComfyUI simulator on %s", url)
    try:
        await asyncio.Event().wait()
    finally:
        await sim.stop()
