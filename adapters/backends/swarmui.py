"""The SwarmUI client (docs/API.md and docs/APIRoutes/*.md of mcmonkeyprojects/SwarmUI).

Every call carries a `session_id` from `POST /API/GetNewSession`; an `invalid_session_id` answer (a restart, or
the session was cleaned up) gets a new one and the call once more. Each job has a session of its own, because
`InterruptAll` stops every generation of a session. Generation runs over `WS /API/GenerateText2ImageWS`: status
frames (waiting for a backend, loading a model), `gen_progress` with data-URL previews, one frame per image (a
`View/...` path to GET, or a data URL), the mini-grid at batch index -1 (skipped), `discard_indices`, then
`socket_intention: close`. A Swarm account's token goes in the `swarm_token` cookie, on every request.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import httpx
from pydantic import SecretStr
from websockets.asyncio.client import connect
from websockets.exceptions import WebSocketException

from adapters.backends.a1111_errors import unreachable
from adapters.backends.comfyui_graph import checkpoint_file, sampler_and_scheduler
from adapters.backends.downloads import download_image
from adapters.backends.swarmui_inventory import inventory_from
from bot.errors import BackendError, BackendUnavailable
from bot.models import GeneratedImage, GenerationRequest, GenerationResult, Progress
from bot.ports import BackendHealth, Capabilities, ProgressCallback

log = logging.getLogger(__name__)
RETRYABLE = ("Timeout!", "Something went wrong", "No images were generated")
# CurrentBackendStatus values under which SwarmUI cannot generate at all
CANNOT_RUN = {"empty", "all_disabled", "disabled", "idle"}
WS_MAX_BYTES = 256 * 1024 * 1024  # data-URL images of a large batch arrive in single frames


class _SessionExpired(Exception):
    """The server does not know the session id (any more)."""


@dataclass
class _Running:
    session: str = ""
    sent: bool = False
    wanted_cancel: bool = False
    images: dict[int, str] = field(default_factory=dict)  # batch index -> View path or data URL
    percent: dict[int, float] = field(default_factory=dict)
    metadata: dict[int, str] = field(default_factory=dict)


class SwarmUIBackend:
    """Backend port for SwarmUI. Options: `model` (when a preset names none), `previews`, `timeout_seconds`,
    `save_images` (keep them in Swarm's history too; by default `donotsave`: they come back as data URLs).

    `secrets` is the account token (`swarm_token` cookie) for a Swarm that requires accounts.
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
        self.kind = "swarmui"
        self.url = url.rstrip("/")
        self.model: str | None = options.get("model")
        self.previews = bool(options.get("previews", True))
        self.save_images = bool(options.get("save_images", False))
        self.capabilities = Capabilities(upscale=False, previews=self.previews, max_batch=16, variations=True)
        self._headers = {"Cookie": f"swarm_token={secrets.get_secret_value()}"} if secrets else {}
        timeout = httpx.Timeout(float(options.get("timeout_seconds", 60)), connect=10)
        self._client = httpx.AsyncClient(base_url=self.url, headers=self._headers, timeout=timeout, transport=transport)
        self._session: str | None = None  # for models and status, renewed when it expires
        self._jobs: dict[str, _Running] = {}

    async def aclose(self) -> None:
        await self._client.aclose()

    # ---- sessions and plain calls --------------------------------------------------------------

    async def _post(self, route: str, body: dict[str, Any]) -> dict[str, Any]:
        try:
            response = await self._client.post(f"/API/{route}", json=body)
        except httpx.HTTPError as exc:
            raise unreachable(self.name, exc) from exc
        try:
            answer = response.json()
        except ValueError:
            answer = None
        if not isinstance(answer, dict):
            if response.status_code >= 500:
                raise BackendUnavailable.of("backend.unavailable_http", status=response.status_code)
            raise BackendError.of("backend.swarm_http", status=response.status_code, route=route)
        if answer.get("error_id") == "invalid_session_id":
            raise _SessionExpired
        if answer.get("error"):
            raise self._explain(str(answer["error"]))
        return answer

    async def new_session(self) -> str:
        """A fresh session id (the cookie decides whose)."""
        answer = await self._post("GetNewSession", {})
        return str(answer["session_id"])

    async def call(self, route: str, body: dict[str, Any]) -> dict[str, Any]:
        """A route on the shared session: a new session and one more try when it has expired."""
        for _ in range(2):
            if self._session is None:
                self._session = await self.new_session()
            try:
                return await self._post(route, {**body, "session_id": self._session})
            except _SessionExpired:
                self._session = None
        raise BackendError.of("backend.swarm_bad_session", retryable=True, name=self.name)

    def _explain(self, message: str) -> BackendError:
        if message.startswith("No backends available"):  # none running: requeue, and health checks take over
            return BackendUnavailable.of("backend.swarm_no_backends", name=self.name, detail=message)
        if message.startswith("Invalid or unauthorized"):
            return BackendError.of("backend.swarm_unauthorized", name=self.name, detail=message)
        if "Invalid model value" in message:
            return BackendError.of("backend.swarm_unknown_model", detail=message, message=message)
        return BackendError.of("backend.swarm_refused", retryable=message.startswith(RETRYABLE), message=message)

    # ---- the port ------------------------------------------------------------------------------

    async def generate(
        self, job_id: str, request: GenerationRequest, source: bytes | None, on_progress: ProgressCallback
    ) -> GenerationResult:
        if request.kind == "upscale":
            raise BackendError.of("backend.swarm_no_upscale")
        if request.kind == "img2img" and source is None:
            raise BackendError.of("backend.source_missing")
        body = self.payload(request, source)
        running = self._jobs[job_id] = _Running()
        try:
            for _ in range(2):
                running.session = await self.new_session()  # one per job: InterruptAll stops a whole session
                if running.wanted_cancel:
                    break
                try:
                    await self._run(running, body, on_progress)
                    break
                except _SessionExpired:
                    running.sent = False
                    running.images.clear()
            else:
                raise BackendError.of("backend.swarm_bad_session", retryable=True, name=self.name)
            if running.wanted_cancel:
                return GenerationResult(images=[], interrupted=True)
            return GenerationResult(images=await self._fetch(running, request))
        finally:
            self._jobs.pop(job_id, None)

    async def interrupt(self, job_id: str) -> None:
        running = self._jobs.get(job_id)
        if running is None:
            return
        running.wanted_cancel = True
        if running.sent:  # before the request is sent there is nothing to stop; _run checks the flag after
            await self._interrupt(running.session)

    async def _interrupt(self, session: str) -> None:
        try:
            await self._post("InterruptAll", {"session_id": session, "other_sessions": False})
        except _SessionExpired:
            return  # the session is gone, and its generations with it

    async def health(self) -> BackendHealth:
        """Models from ListModels (with the loaded one); not ok when none of Swarm's own backends can run."""
        try:
            answer = await self.call("ListModels", {"path": "", "depth": 20, "subtype": "Stable-Diffusion"})
            status = (await self.call("GetCurrentStatus", {})).get("backend_status") or {}
            params = await self.call("ListT2IParams", {})
        except BackendError as exc:
            return BackendHealth(ok=False, detail=exc.user_message)
        files = [item for item in answer.get("files", []) if isinstance(item, dict)]
        loaded = next((str(item["name"]) for item in files if item.get("loaded")), None)
        return BackendHealth(
            ok=status.get("status") not in CANNOT_RUN,
            models=[str(item.get("name")) for item in files],
            loaded_model=loaded,
            detail=str(status.get("message") or ""),
            inventory=inventory_from(params),
        )

    # ---- steps ---------------------------------------------------------------------------------

    def payload(self, request: GenerationRequest, source: bytes | None = None) -> dict[str, Any]:
        """The raw input: SwarmUI's parameter ids (the display names, lower-cased, letters only)."""
        sampler, scheduler = sampler_and_scheduler(request)
        body: dict[str, Any] = {
            "images": request.count,
            "prompt": request.prompt,
            "negativeprompt": request.negative_prompt,
            "model": checkpoint_file(request.checkpoint) or self.model or "",
            "steps": request.steps,
            "cfgscale": request.cfg_scale,
            "seed": request.seed,
            "width": request.width,
            "height": request.height,
            "sampler": sampler,
            "scheduler": scheduler,
            # the bot keeps its own copy: by default nothing of the chat's lands in Swarm's image history
            "donotsave": not self.save_images,
        }
        if request.distilled_cfg_scale is not None:
            body["fluxguidancescale"] = request.distilled_cfg_scale
        if request.subseed is not None and request.subseed_strength > 0:
            body["variationseed"] = request.subseed
            body["variationseedstrength"] = request.subseed_strength
        if request.kind == "img2img" and source is not None:
            body["initimage"] = base64.b64encode(source).decode("ascii")
            body["initimagecreativity"] = request.denoising_strength if request.denoising_strength is not None else 0.6
        return body

    async def _run(self, running: _Running, body: dict[str, Any], on_progress: ProgressCallback) -> None:
        ws_url = self.url.replace("http", "ws", 1) + "/API/GenerateText2ImageWS"
        try:
            async with connect(ws_url, proxy=None, max_size=WS_MAX_BYTES, additional_headers=self._headers) as ws:
                await ws.send(json.dumps({**body, "session_id": running.session}))
                running.sent = True
                if running.wanted_cancel:  # the cancel came while the request was on its way
                    await self._interrupt(running.session)
                async for frame in ws:
                    message = json.loads(frame)
                    if isinstance(message, dict) and self._on_frame(message, running, body, on_progress):
                        return
        except (OSError, WebSocketException) as exc:
            raise BackendUnavailable.during(  # the generation's socket: SwarmUI went away running it
                True, "backend.swarm_lost_connection", detail=type(exc).__name__, name=self.name
            ) from exc
        raise BackendUnavailable.during(True, "backend.swarm_closed", name=self.name)

    def _on_frame(
        self, frame: dict[str, Any], running: _Running, body: dict[str, Any], on_progress: ProgressCallback
    ) -> bool:
        """Handle one frame; True when the generation is over."""
        if frame.get("error_id") == "invalid_session_id":
            raise _SessionExpired
        if frame.get("error"):
            if running.wanted_cancel:  # "Generation session interrupted."
                return True
            raise self._explain(str(frame["error"]))
        if frame.get("socket_intention") == "close":
            return True
        if isinstance(frame.get("status"), dict):
            note = _status_note(frame["status"])
            if note:
                on_progress(Progress(fraction=self._fraction(running, body), note=note))
        elif isinstance(frame.get("gen_progress"), dict):
            on_progress(self._progress(frame["gen_progress"], running, body))
        elif isinstance(frame.get("image"), str):
            index = _index(frame.get("batch_index"))
            if index is not None and index >= 0:  # -1 is the mini-grid, below -1 intermediate images
                running.images[index] = frame["image"]
                running.percent[index] = 1.0
                running.metadata[index] = str(frame.get("metadata") or "")
        elif isinstance(frame.get("discard_indices"), list):
            for value in frame["discard_indices"]:  # e.g. a scoring extension refused them
                index = _index(value)
                if index is not None:
                    running.images.pop(index, None)
        return False

    def _fraction(self, running: _Running, body: dict[str, Any]) -> float:
        return min(1.0, sum(running.percent.values()) / max(1, int(body["images"])))

    def _progress(self, data: dict[str, Any], running: _Running, body: dict[str, Any]) -> Progress:
        index = _index(data.get("batch_index"))
        if index is not None and index >= 0:
            running.percent[index] = float(data.get("overall_percent") or 0.0)
        preview = _data_url(str(data["preview"])) if self.previews and data.get("preview") else None
        steps = int(body["steps"])
        step = round(float(data.get("current_percent") or 0.0) * steps)
        return Progress(fraction=self._fraction(running, body), step=step, steps=steps, preview=preview)

    async def _fetch(self, running: _Running, request: GenerationRequest) -> list[GeneratedImage]:
        varied = request.subseed is not None and request.subseed_strength > 0
        images = []
        for index in sorted(running.images):
            link = running.images[index]
            if link.startswith("data:"):
                data = _data_url(link)
                if data is None:
                    raise BackendError.of("backend.bad_base64")
            else:
                data = await download_image(self._client, "/" + quote(link.lstrip("/"), safe="/"), source=self.name)
            # Swarm steps the variation seed per image when there is one, else the seed
            seed = request.seed if varied else request.seed + index
            images.append(GeneratedImage(data=data, seed=seed, infotext=running.metadata[index]))
        return images


def _index(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _data_url(text: str) -> bytes | None:
    """The bytes of a `data:image/...;base64,` URL."""
    try:
        return base64.b64decode(text.split(",", 1)[1], validate=True)
    except (IndexError, binascii.Error, ValueError):
        return None


def _status_note(status: dict[str, Any]) -> str:
    if status.get("loading_models"):
        return "SwarmUI is loading the model"
    if status.get("waiting_backends") and not status.get("live_gens"):
        return "waiting for a free SwarmUI backend"
    return ""
