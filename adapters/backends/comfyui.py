"""The ComfyUI client: WebSocket (with our clientId) first, then POST /prompt; finish at `executing` node null.

Progress comes from `progress` events, previews from binary frames, the images from /history and /view.
No `Origin` header is ever sent (ComfyUI answers 403 when it does not match the host).
"""

from __future__ import annotations

import asyncio
import json
import logging
import struct
import uuid
from dataclasses import dataclass, field
from typing import Any

import httpx
from pydantic import SecretStr
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import WebSocketException

from adapters.backends import comfyui_graph as graphs
from adapters.backends.a1111_errors import unreachable
from adapters.backends.http import bearer_client, bearer_headers
from bot.errors import BackendError, BackendUnavailable
from bot.lifecycle import stop_tasks
from bot.models import GeneratedImage, GenerationRequest, GenerationResult, Progress
from bot.ports import BackendHealth, Capabilities, ProgressCallback

log = logging.getLogger(__name__)


@dataclass
class _Running:
    prompt_id: str = ""
    started: bool = False
    wanted_cancel: bool = False
    cancelled: asyncio.Event = field(default_factory=asyncio.Event)


class ComfyUIBackend:
    """Backend port for ComfyUI. Options: `workflow` (name or path), `node_map`, `previews`."""

    def __init__(
        self,
        name: str,
        url: str,
        secrets: SecretStr | None = None,
        options: dict[str, Any] | None = None,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        options = options or {}
        self.name = name
        self.kind = "comfyui"
        self.url = url.rstrip("/")
        self.previews = bool(options.get("previews", True))
        self.workflow: str | None = options.get("workflow")
        self.node_map: dict[str, Any] | None = options.get("node_map")
        self.capabilities = Capabilities(upscale=False, previews=self.previews, max_batch=8)
        # A bearer token is only for a reverse proxy in front of ComfyUI, which has no auth of its own.
        self._headers = bearer_headers(secrets)  # the WebSocket needs them too
        self._client = bearer_client(self.url, secrets, float(options.get("timeout_seconds", 60)), transport)
        self._jobs: dict[str, _Running] = {}

    async def aclose(self) -> None:
        await self._client.aclose()

    # ---- the port ------------------------------------------------------------------------------

    async def generate(
        self, job_id: str, request: GenerationRequest, source: bytes | None, on_progress: ProgressCallback
    ) -> GenerationResult:
        if request.kind == "upscale":
            raise BackendError.of("backend.comfy_no_upscale")
        name = graphs.workflow_name(request, self.workflow)
        init = await self._upload(job_id, source) if request.kind == "img2img" else None
        if request.kind == "img2img" and init is None:
            raise BackendError.of("backend.source_missing")
        graph = graphs.patch(
            graphs.load_workflow(name), graphs.node_map_for(name, self.node_map), graphs.values_for(request, init)
        )
        client_id = uuid.uuid4().hex
        running = self._jobs[job_id] = _Running()
        ws_url = self.url.replace("http", "ws", 1) + f"/ws?clientId={client_id}"
        try:
            async with connect(ws_url, proxy=None, max_size=64 * 1024 * 1024, additional_headers=self._headers) as ws:
                if self.previews:
                    await ws.send(json.dumps({"type": "feature_flags", "data": {"supports_preview_metadata": True}}))
                running.prompt_id = await self._queue(graph, client_id)
                if running.wanted_cancel:  # cancel arrived while the prompt was being queued
                    await self._cancel(running)
                watch = asyncio.create_task(self._watch(ws, running, on_progress), name=f"comfy-{job_id}")
                cancelled = asyncio.create_task(running.cancelled.wait())
                try:
                    await asyncio.wait({watch, cancelled}, return_when=asyncio.FIRST_COMPLETED)
                finally:
                    await stop_tasks([cancelled])
                if not watch.done():  # removed from the queue before it ran: no event will ever come
                    await stop_tasks([watch])
                    if not watch.cancelled():
                        log.debug("watcher ended with %r", watch.exception())
                    return GenerationResult(images=[], interrupted=True)
                interrupted = watch.result()
        except (OSError, WebSocketException) as exc:
            raise BackendUnavailable.of(
                "backend.comfy_lost_connection", detail=type(exc).__name__, name=self.name
            ) from exc
        finally:
            self._jobs.pop(job_id, None)
        if interrupted:
            return GenerationResult(images=[], interrupted=True)
        return await self._collect(running.prompt_id, graph, request)

    async def interrupt(self, job_id: str) -> None:
        running = self._jobs.get(job_id)
        if running is None:
            return
        running.wanted_cancel = True
        if running.prompt_id:
            await self._cancel(running)

    async def _cancel(self, running: _Running) -> None:
        """Remove the prompt if it still waits in the queue, else interrupt it."""
        try:
            if not running.started:
                queue = (await self._client.get("/queue")).json()
                pending = {str(item[1]) for item in queue.get("queue_pending", [])}
                if running.prompt_id in pending:
                    await self._client.post("/queue", json={"delete": [running.prompt_id]})
                    running.cancelled.set()
                    return
            await self._client.post("/interrupt", json={"prompt_id": running.prompt_id})
        except httpx.HTTPError as exc:
            raise unreachable(self.name, exc) from exc

    async def health(self) -> BackendHealth:
        try:
            stats = await self._client.get("/system_stats")
            models = await self._client.get("/models/checkpoints")
        except httpx.HTTPError as exc:
            return BackendHealth(ok=False, detail=unreachable(self.name, exc).user_message)
        if stats.status_code != 200:
            return BackendHealth(ok=False, detail=f"ComfyUI answered HTTP {stats.status_code}.")
        names = [str(item) for item in models.json()] if models.status_code == 200 else []
        return BackendHealth(ok=True, models=names)

    # ---- steps ---------------------------------------------------------------------------------

    async def _upload(self, job_id: str, source: bytes | None) -> str | None:
        if source is None:
            return None
        files = {"image": (f"imagebridge-{job_id}.png", source, "image/png")}
        try:
            response = await self._client.post("/upload/image", files=files, data={"type": "input", "overwrite": "1"})
        except httpx.HTTPError as exc:
            raise unreachable(self.name, exc) from exc
        if response.status_code != 200:
            raise BackendError.of("backend.comfy_refused_source", status=response.status_code)
        body = response.json()
        subfolder = body.get("subfolder") or ""
        return f"{subfolder}/{body['name']}" if subfolder else str(body["name"])

    async def _queue(self, graph: dict[str, Any], client_id: str) -> str:
        try:
            response = await self._client.post("/prompt", json={"prompt": graph, "client_id": client_id})
        except httpx.HTTPError as exc:
            raise unreachable(self.name, exc) from exc
        if response.status_code == 400:
            raise graphs.explain_validation(_json(response))
        if response.status_code == 403:
            raise BackendError.of("backend.comfy_forbidden")
        if response.status_code != 200:
            raise BackendError.of("backend.comfy_queue_failed", retryable=True, status=response.status_code)
        return str(response.json()["prompt_id"])

    async def _watch(self, ws: ClientConnection, running: _Running, on_progress: ProgressCallback) -> bool:
        """Read events until our prompt's `executing` node null. Returns whether it was interrupted."""
        interrupted = False
        last = Progress()
        async for frame in ws:
            if isinstance(frame, bytes):
                preview = _preview(frame, running.prompt_id)
                if preview is not None and self.previews:
                    last = last.model_copy(update={"preview": preview})
                    on_progress(last)
                continue
            message = json.loads(frame)
            kind, data = message.get("type"), message.get("data") or {}
            if data.get("prompt_id") != running.prompt_id:
                continue
            if kind == "execution_start":
                running.started = True
            elif kind == "progress":
                value, top = int(data.get("value", 0)), max(1, int(data.get("max", 1)))
                last = Progress(fraction=value / top, step=value, steps=top)
                on_progress(last)
            elif kind == "execution_error":
                raise BackendError.of(
                    "backend.comfy_node_failed",
                    retryable="OutOfMemory" not in str(data.get("exception_type")),
                    node=data.get("node_id"),
                    node_type=data.get("node_type"),
                    reason=data.get("exception_message", "").strip() or data.get("exception_type"),
                )
            elif kind == "execution_interrupted":
                interrupted = True
            elif kind == "executing" and data.get("node") is None:
                return interrupted
        raise BackendUnavailable.of("backend.comfy_closed", name=self.name)

    async def _collect(self, prompt_id: str, graph: dict[str, Any], request: GenerationRequest) -> GenerationResult:
        try:
            history = (await self._client.get(f"/history/{prompt_id}")).json().get(prompt_id)
            if not history:
                raise BackendError.of("backend.comfy_no_history", retryable=True)
            status = history.get("status") or {}
            if status.get("status_str") == "error":
                raise BackendError.of("backend.comfy_job_error", retryable=True)
            images: list[GeneratedImage] = []
            for node_id in graphs.output_nodes(graph):
                for item in (history.get("outputs", {}).get(node_id) or {}).get("images", []):
                    params = {
                        "filename": item["filename"],
                        "subfolder": item.get("subfolder", ""),
                        "type": item["type"],
                    }
                    response = await self._client.get("/view", params=params)
                    if response.status_code != 200:
                        raise BackendError.of("backend.comfy_view_failed", status=response.status_code)
                    images.append(GeneratedImage(data=response.content, seed=request.seed + len(images)))
        except httpx.HTTPError as exc:
            raise unreachable(self.name, exc) from exc
        return GenerationResult(images=images)


def _preview(frame: bytes, prompt_id: str) -> bytes | None:
    """The image of a binary preview frame: event 1 (plain) or event 4 (with metadata for our prompt)."""
    if len(frame) < 8:
        return None
    event, second = struct.unpack(">II", frame[:8])
    if event == 1:
        return frame[8:]
    if event == 4:
        meta = json.loads(frame[8 : 8 + second])
        if meta.get("prompt_id") not in (None, prompt_id):
            return None
        return frame[8 + second :]
    return None


def _json(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return response.text
