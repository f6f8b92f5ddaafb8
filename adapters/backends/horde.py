"""AI Horde (`/v2/generate/async`): the crowd-sourced GPU pool, for when one GPU is not enough.

Submit, poll `/check` (cheap, 10/s) no faster than the configured interval, fetch `/status` (10/min) once
done, download the R2 URLs (status and bytes checked). Queue position and wait time are reported as progress notes.
The model is the backend's `model` option, else the preset's checkpoint when that is a Horde model name (a
checkpoint file name is refused); samplers are mapped one to one or refused, never swapped.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import re
import time
from dataclasses import dataclass, field
from typing import Any

import httpx
from pydantic import SecretStr

from adapters.backends.downloads import download_image
from bot.errors import BackendError, BackendUnavailable
from bot.models import GeneratedImage, GenerationRequest, GenerationResult, Progress
from bot.ports import BackendHealth, Capabilities, ProgressCallback

log = logging.getLogger(__name__)

ANONYMOUS_KEY = "0000000000"
CLIENT_AGENT = "imagebridge:0.1:https://github.com/imagebridge/imagebridge"
# WebUI sampler name -> the Horde's; each maps to the same algorithm, and anything else is refused
SAMPLERS = {"Euler a": "k_euler_a", "Euler": "k_euler", "Heun": "k_heun", "LMS": "k_lms", "DPM2": "k_dpm_2",
            "DPM2 a": "k_dpm_2_a", "DPM fast": "k_dpm_fast", "DPM adaptive": "k_dpm_adaptive",
            "DPM++ 2S a": "k_dpmpp_2s_a", "DPM++ 2M": "k_dpmpp_2m", "DPM++ SDE": "k_dpmpp_sde", "DDIM": "DDIM",
            "LCM": "lcm"}  # fmt: skip
_BY_LOWER = {name.lower(): horde for name, horde in SAMPLERS.items()}
HORDE_SAMPLERS = {*SAMPLERS.values(), "dpmsolver"}
CHECKPOINT_FILE = re.compile(r"\.(safetensors|ckpt|pt|pth|bin|gguf|sft)\b|\s\[[0-9a-f]{8,10}\]$", re.IGNORECASE)
MODELS_TTL = 300.0  # seconds a fetched model list is trusted
REASONS = {  # the Horde's `rc` -> the catalog key of the message a user understands
    "KudosUpfront": "backend.horde_kudos_upfront",
    "TooManyPrompts": "backend.horde_too_many_prompts",
    "InvalidAPIKey": "backend.horde_invalid_api_key",
    "InvalidSize": "backend.horde_invalid_size",
    "TooManySteps": "backend.horde_too_many_steps",
    "UnsupportedSampler": "backend.horde_unsupported_sampler",
    "NoValidWorkers": "backend.horde_no_valid_workers",
    "MaintenanceMode": "backend.horde_maintenance",
    "CorruptPrompt": "backend.horde_corrupt_prompt",
    "TimeoutIP": "backend.horde_timeout_ip",
    "RequestNotFound": "backend.horde_request_not_found",
}
RETRYABLE = {"TooManyPrompts", "MaintenanceMode", "RequestNotFound"}


def horde_sampler(sampler: str, scheduler: str | None = None) -> tuple[str, bool] | None:
    """The Horde's sampler name and its `karras` flag for a WebUI sampler, or None when the Horde has no such one."""
    name = sampler.strip()
    karras = "karras" in f"{name} {scheduler or ''}".lower()
    if name in HORDE_SAMPLERS:
        return name, karras
    key = re.sub(r"\s+karras$", "", name.lower())
    return (_BY_LOWER[key], karras) if key in _BY_LOWER else None


@dataclass
class _Waiting:
    horde_id: str = ""
    cancelled: asyncio.Event = field(default_factory=asyncio.Event)


class HordeBackend:
    """Backend port for AI Horde. Options: `model` (Horde model name), `nsfw`, `poll_seconds`, `max_wait_seconds`."""

    def __init__(
        self,
        name: str,
        url: str = "https://aihorde.net/api/v2",
        secrets: SecretStr | None = None,
        options: dict[str, Any] | None = None,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        options = options or {}
        self.name = name
        self.kind = "horde"
        self.model: str | None = options.get("model")
        self.nsfw = bool(options.get("nsfw", False))
        self.poll_seconds = max(float(options.get("poll_seconds", 2.0)), 0.1)  # /check is cached for 1 s anyway
        self.max_wait = float(options.get("max_wait_seconds", 600))
        self.capabilities = Capabilities(upscale=False, previews=False, cancel=True, max_batch=20)
        key = secrets.get_secret_value() if secrets else ANONYMOUS_KEY  # IMAGEBRIDGE_BACKEND_<NAME>_API_KEY
        base = url.rstrip("/")
        headers = {"apikey": key, "Client-Agent": CLIENT_AGENT}
        timeout = httpx.Timeout(60, connect=10)
        self._client = httpx.AsyncClient(base_url=base, headers=headers, timeout=timeout, transport=transport)
        self._downloads = httpx.AsyncClient(timeout=timeout, transport=transport)  # no apikey to image hosts
        self._jobs: dict[str, _Waiting] = {}
        self._models: tuple[float, set[str]] = (0.0, set())

    async def aclose(self) -> None:
        await self._client.aclose()
        await self._downloads.aclose()

    def payload(self, request: GenerationRequest, source: bytes | None, model: str | None = None) -> dict[str, Any]:
        prompt = f"{request.prompt} ### {request.negative_prompt}" if request.negative_prompt else request.prompt
        sampler = horde_sampler(request.sampler, request.scheduler)
        if sampler is None:
            allowed = ", ".join(SAMPLERS)
            raise BackendError.of("backend.horde_sampler_unmapped", sampler=request.sampler, allowed=allowed)
        params: dict[str, Any] = {
            "sampler_name": sampler[0],
            "karras": sampler[1],
            "cfg_scale": request.cfg_scale,
            "steps": request.steps,
            "width": _multiple_of_64(request.width),
            "height": _multiple_of_64(request.height),
            "n": request.count,
            "seed": str(request.seed),
        }
        body: dict[str, Any] = {
            "prompt": prompt,
            "params": params,
            "models": [model or self.model or request.checkpoint],
            "nsfw": self.nsfw,
            "censor_nsfw": not self.nsfw,
            "r2": True,
            "shared": False,
        }
        if request.kind == "img2img" and source is not None:
            body["source_image"] = base64.b64encode(source).decode()
            body["source_processing"] = "img2img"
            params["denoising_strength"] = request.denoising_strength or 0.6
        return body

    async def generate(
        self, job_id: str, request: GenerationRequest, source: bytes | None, on_progress: ProgressCallback
    ) -> GenerationResult:
        if request.kind == "upscale":
            raise BackendError.of("backend.horde_no_upscale")
        body = self.payload(request, source, await self._model_for(request))  # refusals before anything is sent
        waiting = self._jobs[job_id] = _Waiting()
        try:
            submitted = await self._call("POST", "/generate/async", json=body)
            waiting.horde_id = str(submitted["id"])
            for warning in submitted.get("warnings") or []:
                message = warning.get("message", warning.get("code"))
                on_progress(Progress(note_key="progress_note.horde_warning", note_params={"message": message}))
            if waiting.cancelled.is_set():
                await self._delete(waiting.horde_id)
            done = await self._wait(waiting, request, on_progress)
            if not done:
                return GenerationResult(images=[], interrupted=True)
            status = await self._call("GET", f"/generate/status/{waiting.horde_id}")
            return await self._result(status, request)
        finally:
            self._jobs.pop(job_id, None)

    async def _model_for(self, request: GenerationRequest) -> str:
        """The backend's `model`, else the preset's checkpoint if it is a model the Horde serves."""
        if self.model:
            return self.model
        checkpoint = request.checkpoint
        known = await self._known_models()
        if CHECKPOINT_FILE.search(checkpoint):
            example = min(known) if known else "AlbedoBase XL (SDXL)"
            raise BackendError.of("backend.horde_checkpoint_not_model", checkpoint=checkpoint, example=example)
        if known and checkpoint not in known:
            raise BackendError.of("backend.horde_unknown_model", model=checkpoint, example=min(known))
        return checkpoint

    async def _known_models(self) -> set[str]:
        """The image models the Horde's workers serve now (cached a few minutes); empty if it cannot be read."""
        fetched, names = self._models
        if names and time.monotonic() - fetched < MODELS_TTL:
            return names
        try:
            response = await self._client.get("/status/models", params={"type": "image"})
        except httpx.HTTPError:
            return names
        if response.status_code == 200:
            names = {str(m.get("name")) for m in response.json() if isinstance(m, dict) and m.get("name")}
            self._models = (time.monotonic(), names)
        return names

    async def _wait(self, waiting: _Waiting, request: GenerationRequest, on_progress: ProgressCallback) -> bool:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.max_wait
        while not waiting.cancelled.is_set():
            check = await self._call("GET", f"/generate/check/{waiting.horde_id}")
            if check.get("faulted"):
                raise BackendError.of("backend.horde_worker_failed", retryable=True)
            if check.get("done"):
                return True
            if check.get("is_possible") is False:
                await self._delete(waiting.horde_id)
                raise BackendError.of(REASONS["NoValidWorkers"])
            on_progress(_progress(check, request.count))
            if loop.time() > deadline:
                await self._delete(waiting.horde_id)
                raise BackendError.of("backend.horde_timeout", retryable=True, seconds=self.max_wait)
            try:
                async with asyncio.timeout(self.poll_seconds):
                    await waiting.cancelled.wait()
            except TimeoutError:
                pass
        return False

    async def interrupt(self, job_id: str) -> None:
        waiting = self._jobs.get(job_id)
        if waiting is None:
            return
        waiting.cancelled.set()  # before the id is known, generate() deletes it as soon as it is
        if waiting.horde_id:
            await self._delete(waiting.horde_id)

    async def health(self) -> BackendHealth:
        try:
            beat = await self._client.get("/status/heartbeat")
            models = await self._client.get("/status/models", params={"type": "image"})
        except httpx.HTTPError as exc:
            return BackendHealth(ok=False, detail=f"the AI Horde cannot be reached ({type(exc).__name__})")
        if beat.status_code != 200:
            return BackendHealth(ok=False, detail=_explain(beat).user_message)
        names = [str(m.get("name")) for m in models.json()] if models.status_code == 200 else []
        return BackendHealth(ok=True, models=names, loaded_model=self.model)

    async def _delete(self, horde_id: str) -> None:
        try:
            await self._client.delete(f"/generate/status/{horde_id}")
        except httpx.HTTPError as exc:
            log.warning("could not cancel Horde request %s: %s", horde_id, exc)

    async def _call(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        for _ in range(5):
            try:
                response = await self._client.request(method, path, **kwargs)
            except httpx.HTTPError as exc:
                raise BackendUnavailable.of("backend.horde_unreachable", detail=type(exc).__name__) from exc
            if response.status_code == 429 and _rc(response) != "TooManyPrompts":  # a rate limit: slow down, retry
                await asyncio.sleep(float(response.headers.get("Retry-After", self.poll_seconds)))
                continue
            if response.status_code not in (200, 202):
                raise _explain(response)
            body: dict[str, Any] = response.json()
            return body
        raise BackendError.of("backend.horde_keeps_rate_limiting", retryable=True)

    async def _result(self, status: dict[str, Any], request: GenerationRequest) -> GenerationResult:
        generations = status.get("generations") or []
        kept = [g for g in generations if not g.get("censored")]
        if generations and not kept:
            raise BackendError.of("backend.horde_censored")
        images = []
        for generation in kept:
            img = str(generation.get("img", ""))
            if img.startswith("http"):
                data = await download_image(self._downloads, img, source="the AI Horde")
            else:
                data = base64.b64decode(img)
            seed = generation.get("seed")
            note = f"AI Horde worker {generation.get('worker_name', '?')}, model {generation.get('model', '?')}"
            images.append(GeneratedImage(data=data, seed=int(seed) if str(seed).isdigit() else None, infotext=note))
        return GenerationResult(images=images)


def _progress(check: dict[str, Any], count: int) -> Progress:
    position, wait = int(check.get("queue_position") or 0), float(check.get("wait_time") or 0)
    finished = int(check.get("finished") or 0)
    if int(check.get("processing") or 0):
        key, params = "progress_note.horde_generating", {"seconds": round(wait)}
    else:
        key, params = "progress_note.horde_position", {"position": position, "seconds": round(wait)}
    return Progress(fraction=finished / max(count, 1), eta_seconds=wait or None, note_key=key, note_params=params)


def _rc(response: httpx.Response) -> str:
    try:
        return str(response.json().get("rc") or "")
    except (ValueError, AttributeError):
        return ""


def _multiple_of_64(value: int) -> int:
    return max(64, min(3072, round(value / 64) * 64))


def _explain(response: httpx.Response) -> BackendError:
    try:
        body = response.json()
    except ValueError:
        body = {}
    rc = str(body.get("rc") or "")
    message = str(body.get("message") or response.text[:200])
    errors = body.get("errors")
    if response.status_code == 400 and isinstance(errors, dict) and errors:  # the payload schema refused it
        details = "; ".join(f"{field}: {problem}" for field, problem in errors.items())
        return BackendError.of("backend.horde_invalid_payload", details=details[:300])
    if rc in REASONS:
        if rc == "MaintenanceMode":
            return BackendUnavailable.of(REASONS[rc], detail=message)
        return BackendError.of(REASONS[rc], retryable=rc in RETRYABLE, detail=message)
    if response.status_code == 429:
        return BackendError.of("backend.horde_rate_limited", retryable=True)
    if response.status_code >= 500:
        return BackendUnavailable.of("backend.horde_failing", detail=message, status=response.status_code)
    return BackendError.of("backend.horde_refused", detail=rc, message=message)
