"""The ComfyUI client: WebSocket (with our clientId) first, then POST /prompt with our own prompt_id; finish at
`executing` node null, then read /history and /view.

Each image is its own prompt with its own seed (ComfyUI samples a batch from one seed, so image 2 of a batch is
not "seed+1"). Prompt ids derive from the job id, the image and the graph, so after a restart the same job
finds its prompt still queued or already done (`/queue`, `/history/{id}`) instead of running it again.
A cancelled or timed-out job deletes its prompt from the queue or interrupts it by prompt id.
No `Origin` header is ever sent (ComfyUI answers 403 when it does not match the host).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import uuid
from typing import Any

import httpx
from pydantic import SecretStr
from websockets.asyncio.client import connect
from websockets.exceptions import WebSocketException

from adapters.backends import comfyui_graph as graphs
from adapters.backends.a1111_errors import unreachable
from adapters.backends.comfyui_edit import EditWorkflow, reference_values
from adapters.backends.comfyui_errors import execution_error, explain_validation
from adapters.backends.comfyui_inventory import read_inventory
from adapters.backends.comfyui_watch import Running, watch
from adapters.backends.http import bearer_client, bearer_headers
from bot.errors import BackendError, BackendUnavailable
from bot.lifecycle import stop_tasks
from bot.models import GeneratedImage, GenerationRequest, GenerationResult
from bot.ports import BackendHealth, Capabilities, ProgressCallback

log = logging.getLogger(__name__)

_IDS = uuid.UUID("6f1d2a8e-3c4b-5d6e-8f70-9a1b2c3d4e5f")  # namespace of our prompt ids (uuid5)
_ATTEMPTS = 8  # earlier failed prompts of the same image that a retry looks past


def prompt_id_for(job_id: str, index: int, graph: dict[str, Any], attempt: int) -> str:
    """A canonical lowercase UUID (newer ComfyUI insists) that the same job, image and graph always get."""
    digest = hashlib.sha256(json.dumps(graph, sort_keys=True).encode()).hexdigest()[:16]
    return str(uuid.uuid5(_IDS, f"{job_id}/{index}/{attempt}/{digest}"))


class ComfyUIBackend:
    """Backend port for ComfyUI.

    Options: `workflow` / `node_map` (txt2img), `img2img_workflow` / `img2img_node_map`, `edit_workflow` /
    `edit_node_map` (edit by instruction), `previews`, `poll_seconds` (how often a resumed prompt's history is
    asked for).
    """

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
        self.img2img_workflow: str | None = options.get("img2img_workflow")
        self.img2img_node_map: dict[str, Any] | None = options.get("img2img_node_map")
        self.poll_seconds = float(options.get("poll_seconds") or 0.5)
        img2img = graphs.img2img_workflow(self.workflow, self.img2img_workflow, self.node_map) is not None
        edit_name: str | None = options.get("edit_workflow")
        self.edit_workflow = (
            EditWorkflow.configured(edit_name, options.get("edit_node_map"), name) if edit_name else None
        )
        self.max_references = self.edit_workflow.max_references if self.edit_workflow else 0
        self.capabilities = Capabilities(
            img2img=img2img,
            upscale=False,
            previews=self.previews,
            max_batch=8,
            edits=self.edit_workflow is not None,
            variations=True,  # add_variation
            max_references=self.max_references,
        )
        # A bearer token is only for a reverse proxy in front of ComfyUI, which has no auth of its own.
        self._headers = bearer_headers(secrets)  # the WebSocket needs them too
        self._client = bearer_client(self.url, secrets, float(options.get("timeout_seconds", 60)), transport)
        self._jobs: dict[str, Running] = {}
        self._jobs_api: bool | None = None  # whether the server has /api/jobs/{id}/cancel (unknown until asked)

    async def aclose(self) -> None:
        await self._client.aclose()

    # ---- the port ------------------------------------------------------------------------------

    async def generate(
        self, job_id: str, request: GenerationRequest, source: bytes | None, on_progress: ProgressCallback
    ) -> GenerationResult:
        if request.kind == "upscale":
            raise BackendError.of("backend.comfy_no_upscale")
        name = graphs.workflow_for(request, self.workflow, self.img2img_workflow, self.node_map)
        separate = request.kind == "img2img" and self.img2img_workflow is not None
        node_map = graphs.node_map_for(name, self.img2img_node_map if separate else self.node_map)
        template = graphs.load_workflow(name)
        variation = request.subseed is not None and request.subseed_strength > 0
        if variation:
            graphs.add_variation(template, node_map, 0, request.subseed_strength)  # refused before anything runs
        init = await self._upload(job_id, source) if request.kind == "img2img" else None
        if request.kind == "img2img" and init is None:
            raise BackendError.of("backend.source_missing")
        return await self._images(job_id, request, template, node_map, {}, init, on_progress)

    async def edit(
        self, job_id: str, request: GenerationRequest, sources: list[bytes], on_progress: ProgressCallback
    ) -> GenerationResult:
        """Edit by instruction: each reference uploaded into its LoadImage, then one prompt per image."""
        if self.edit_workflow is None:
            raise BackendError.of("backend.comfy_no_edit", name=self.name)
        self.edit_workflow.check(len(sources))  # before anything is uploaded
        template = self.edit_workflow.template(len(sources))
        names = [await self._upload(f"{job_id}-ref{index}", source) for index, source in enumerate(sources, 1)]
        references = reference_values([name for name in names if name is not None])
        return await self._images(job_id, request, template, self.edit_workflow.node_map, references, None, on_progress)

    async def _images(
        self,
        job_id: str,
        request: GenerationRequest,
        template: dict[str, Any],
        node_map: graphs.NodeMap,
        extra: dict[str, Any],
        init: str | None,
        on_progress: ProgressCallback,
    ) -> GenerationResult:
        """`request.count` prompts of one workflow, each with its own seed; interrupted at the first cancel."""
        variation = request.subseed is not None and request.subseed_strength > 0
        images: list[GeneratedImage] = []
        for index in range(request.count):
            seed = request.seed + index
            graph = graphs.patch(template, node_map, graphs.values_for(request, init, seed) | extra)
            if variation:
                graph = graphs.add_variation(graph, node_map, (request.subseed or 0) + index, request.subseed_strength)
            running = Running(index=index, count=request.count, previews=self.previews)
            found = await self._image(job_id, running, graph, on_progress)
            if found is None:
                return GenerationResult(images=[], interrupted=True)
            images += [GeneratedImage(data=data, seed=seed) for data in found]
        return GenerationResult(images=images)

    async def interrupt(self, job_id: str) -> None:
        running = self._jobs.get(job_id)
        if running is None:
            return
        running.wanted_cancel = True
        if running.prompt_id:
            await self._cancel(running)

    async def health(self) -> BackendHealth:
        try:
            stats = await self._client.get("/system_stats")
            info = await self._client.get("/object_info")
        except httpx.HTTPError as exc:
            return BackendHealth(ok=False, detail=unreachable(self.name, exc).user_message)
        if stats.status_code != 200:
            return BackendHealth(ok=False, detail=f"ComfyUI answered HTTP {stats.status_code}.")
        nodes = _json(info) if info.status_code == 200 else None
        if not isinstance(nodes, dict):
            return BackendHealth(ok=False, detail=f"ComfyUI answered /object_info with HTTP {info.status_code}.")
        workflows = (self.workflow, self.node_map, self.img2img_workflow, self.img2img_node_map)
        inventory = await read_inventory(self._client, nodes, *workflows)
        return BackendHealth(ok=True, models=sorted(inventory.checkpoints or ()), inventory=inventory)

    # ---- one image: resume, or run -------------------------------------------------------------

    async def _image(
        self, job_id: str, running: Running, graph: dict[str, Any], on_progress: ProgressCallback
    ) -> list[bytes] | None:
        """One image's prompt: done before (collect it), still queued from before a restart (wait), or new."""
        self._jobs[job_id] = running
        try:
            entry: dict[str, Any] | None = None
            for attempt in range(_ATTEMPTS):
                running.prompt_id = prompt_id_for(job_id, running.index, graph, attempt)
                entry = await self._history(running.prompt_id)
                if entry is None or (entry.get("status") or {}).get("status_str") != "error":
                    break  # new, still queued, or succeeded; a failed earlier attempt is looked past
            if entry is None:
                known = await self._in_queue(running.prompt_id)
                entry = await (self._poll(running) if known else self._run(running, graph, on_progress))
            return None if entry is None else await self._outputs(entry, graph)
        except asyncio.CancelledError:  # a timeout or a shutdown: the prompt must not run on without us
            await self._abandon(running)
            raise
        finally:
            self._jobs.pop(job_id, None)

    async def _run(
        self, running: Running, graph: dict[str, Any], on_progress: ProgressCallback
    ) -> dict[str, Any] | None:
        """Queue the prompt with our socket open and read its events; None if it was cancelled or interrupted."""
        client_id = uuid.uuid4().hex
        ws_url = self.url.replace("http", "ws", 1) + f"/ws?clientId={client_id}"
        try:
            async with connect(ws_url, proxy=None, max_size=64 * 1024 * 1024, additional_headers=self._headers) as ws:
                if self.previews:
                    await ws.send(json.dumps({"type": "feature_flags", "data": {"supports_preview_metadata": True}}))
                running.prompt_id = await self._queue(graph, client_id, running.prompt_id)
                if running.wanted_cancel:  # cancel arrived while the prompt was being queued
                    await self._cancel(running)
                watcher = asyncio.create_task(watch(ws, running, on_progress, self.name), name="comfy-watch")
                cancelled = asyncio.create_task(running.cancelled.wait())
                try:
                    await asyncio.wait({watcher, cancelled}, return_when=asyncio.FIRST_COMPLETED)
                finally:
                    await stop_tasks([watcher, cancelled])
                    if not watcher.cancelled() and watcher.exception() is not None:
                        log.debug("watcher of %s ended with %r", running.prompt_id, watcher.exception())
                if watcher.cancelled():  # removed from the queue before it ran: no event will ever come
                    return None
                interrupted = watcher.result()
        except (OSError, WebSocketException) as exc:
            lost = BackendUnavailable.of("backend.comfy_lost_connection", detail=type(exc).__name__, name=self.name)
            raise await self._judged(running, lost) from exc
        except BackendUnavailable as exc:  # the socket closed before our prompt ended
            raise await self._judged(running, exc) from None
        return None if interrupted else await self._history(running.prompt_id) or {}

    async def _judged(self, running: Running, error: BackendUnavailable) -> BackendUnavailable:
        """A lost socket is ComfyUI going down with our prompt only if it had started and the server lost it:
        after a proxy restart the prompt runs on, and the next attempt collects it."""
        if running.started:
            try:
                kept = await self._in_queue(running.prompt_id) or await self._history(running.prompt_id) is not None
            except BackendError:
                kept = False
            error.mid_job = not kept
        return error

    async def _poll(self, running: Running) -> dict[str, Any] | None:
        """A prompt queued before a restart: its events went to the old socket, so ask /history until it is done."""
        while True:
            entry = await self._history(running.prompt_id)
            if entry is not None:
                return entry
            if running.wanted_cancel or not await self._in_queue(running.prompt_id):
                return await self._history(running.prompt_id) if not running.wanted_cancel else None
            try:
                async with asyncio.timeout(self.poll_seconds):
                    await running.cancelled.wait()
            except TimeoutError:
                continue

    async def _outputs(self, entry: dict[str, Any], graph: dict[str, Any]) -> list[bytes] | None:
        """The images of a finished prompt, or its error as the job's error; None if it was interrupted."""
        status = entry.get("status") or {}
        if status.get("status_str") == "error":
            for kind, data in status.get("messages", []):
                if kind == "execution_error":
                    raise execution_error(data)
                if kind == "execution_interrupted":
                    return None
            raise BackendError.of("backend.comfy_job_error", retryable=True)
        if not entry:
            raise BackendError.of("backend.comfy_no_history", retryable=True)
        images: list[bytes] = []
        try:
            for node_id in graphs.output_nodes(graph):
                for item in (entry.get("outputs", {}).get(node_id) or {}).get("images", []):
                    params = {
                        "filename": item["filename"],
                        "subfolder": item.get("subfolder", ""),
                        "type": item["type"],
                    }
                    response = await self._client.get("/view", params=params)
                    if response.status_code != 200:
                        raise BackendError.of("backend.comfy_view_failed", status=response.status_code)
                    images.append(response.content)
        except httpx.HTTPError as exc:
            raise unreachable(self.name, exc) from exc
        return images

    # ---- cancel ----------------------------------------------------------------------------------

    async def _cancel(self, running: Running) -> None:
        """Delete the prompt if it still waits, interrupt it (by id: nobody else's) if it runs."""
        await self._stop_prompt(running.prompt_id)
        if not running.started and not await self._in_queue(running.prompt_id):
            running.cancelled.set()  # it was deleted before it ran: no event will ever come

    async def _stop_prompt(self, prompt_id: str) -> None:
        """Newer ComfyUI cancels by id atomically (/api/jobs/{id}/cancel); 0.3.x: delete, then interrupt by id."""
        try:
            if self._jobs_api is not False:
                response = await self._client.post(f"/api/jobs/{prompt_id}/cancel")
                self._jobs_api = response.status_code == 200
                if self._jobs_api:
                    return
            await self._client.post("/queue", json={"delete": [prompt_id]})
            await self._client.post("/interrupt", json={"prompt_id": prompt_id})
        except httpx.HTTPError as exc:
            raise unreachable(self.name, exc) from exc

    async def _abandon(self, running: Running) -> None:
        """Stop our prompt while our caller is being cancelled; bounded, and never raising."""
        if not running.prompt_id:
            return
        try:
            async with asyncio.timeout(5):
                await self._stop_prompt(running.prompt_id)
        except (BackendError, TimeoutError) as exc:
            log.warning("could not stop ComfyUI prompt %s: %s", running.prompt_id, exc)

    # ---- HTTP steps ------------------------------------------------------------------------------

    async def _upload(self, job_id: str, source: bytes | None) -> str | None:
        if source is None:
            return None
        files = {"image": (f"{job_id}.png", source, "image/png")}
        form = {"type": "input", "subfolder": "imagebridge", "overwrite": "1"}  # our sources stay in one folder
        try:
            response = await self._client.post("/upload/image", files=files, data=form)
        except httpx.HTTPError as exc:
            raise unreachable(self.name, exc) from exc
        if response.status_code != 200:
            raise BackendError.of("backend.comfy_refused_source", status=response.status_code)
        body = response.json()
        subfolder = body.get("subfolder") or ""
        return f"{subfolder}/{body['name']}" if subfolder else str(body["name"])

    async def _queue(self, graph: dict[str, Any], client_id: str, prompt_id: str) -> str:
        body = {"prompt": graph, "client_id": client_id, "prompt_id": prompt_id}
        try:
            response = await self._client.post("/prompt", json=body)
        except httpx.HTTPError as exc:
            raise unreachable(self.name, exc) from exc
        if response.status_code == 400:
            raise explain_validation(_json(response))
        if response.status_code == 403:
            raise BackendError.of("backend.comfy_forbidden")
        if response.status_code != 200:
            raise BackendError.of("backend.comfy_queue_failed", retryable=True, status=response.status_code)
        return str(response.json().get("prompt_id") or prompt_id)

    async def _history(self, prompt_id: str) -> dict[str, Any] | None:
        try:
            body = (await self._client.get(f"/history/{prompt_id}")).json()
        except httpx.HTTPError as exc:
            raise unreachable(self.name, exc) from exc
        except ValueError:
            return None
        entry = body.get(prompt_id) if isinstance(body, dict) else None
        return entry if isinstance(entry, dict) else None

    async def _in_queue(self, prompt_id: str) -> bool:
        try:
            queue = (await self._client.get("/queue")).json()
        except httpx.HTTPError as exc:
            raise unreachable(self.name, exc) from exc
        rows = [*queue.get("queue_running", []), *queue.get("queue_pending", [])]
        return any(len(row) > 1 and str(row[1]) == prompt_id for row in rows)


def _json(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return response.text
