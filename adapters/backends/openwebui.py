"""Open WebUI's images router (`/api/v1/images`): generation through whatever engine its admin configured.

There is no progress: while the single POST runs we report the elapsed time. Result URLs are Open WebUI
file URLs, downloaded with the same Bearer key.

The router's form takes prompt, size, n, steps and negative_prompt; it has no seed, sampler or CFG, so the
images carry no seed and say so. Its `model` field is never sent: with an admin's key and an A1111 engine it
would switch Open WebUI's *global* model and the shared checkpoint. A `model` option is instead a check: with
an admin's key the configured model must be that one, and a user's key (which cannot see it) is refused.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from typing import Any

import httpx
from pydantic import SecretStr

from adapters.backends.downloads import download_image
from adapters.backends.http import bearer_client
from bot.errors import BackendError, BackendUnavailable
from bot.lifecycle import stop_tasks
from bot.models import GeneratedImage, GenerationRequest, GenerationResult, Progress
from bot.ports import BackendHealth, Capabilities, ProgressCallback

log = logging.getLogger(__name__)

NOT_CONTROLLED = "Open WebUI's engine chose the seed, sampler and CFG scale (its API takes none of them)"
NOT_ADMIN = "You do not have permission"  # the start of ACCESS_PROHIBITED, the 401 a user's key gets from /config
# Engine failures (a 400 whose detail is the engine's error) that may pass; anything else will fail again.
TRANSIENT = ("failed to connect", "cannot connect", "connection refused", "connect call failed", "timeout",
             "timed out", "internal server error", "bad gateway", "service unavailable", "gateway timeout",
             "too many requests")  # fmt: skip


@dataclass(frozen=True)
class ImageSettings:
    """What Open WebUI's admin set: read in full with an admin's key; a user's key sees only the switch."""

    enabled: bool
    engine: str = ""
    model: str = ""
    readable: bool = False


class OpenWebUIBackend:
    """Backend port for Open WebUI. Options: `model` (the id its admin must have set: checked), `note_seconds`."""

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
        self.kind = "openwebui"
        self.model: str | None = options.get("model")
        self.note_seconds = float(options.get("note_seconds", 5.0))
        self.capabilities = Capabilities(img2img=False, upscale=False, progress=False, previews=False, cancel=False)
        self._client = bearer_client(url.rstrip("/"), secrets, float(options.get("timeout_seconds", 900)), transport)

    async def aclose(self) -> None:
        await self._client.aclose()

    async def generate(
        self, job_id: str, request: GenerationRequest, source: bytes | None, on_progress: ProgressCallback
    ) -> GenerationResult:
        if request.kind != "txt2img":
            raise BackendError.of("backend.owui_txt2img_only", name=self.name)
        if self.model:  # a check only: the model is Open WebUI's global setting, never ours to change
            try:
                problem = self._model_problem(await self.settings())
            except httpx.HTTPError as exc:
                raise BackendUnavailable.of("backend.unreachable", detail=type(exc).__name__, name=self.name) from exc
            if problem is not None:
                raise problem
        body = {
            "prompt": request.prompt,
            "size": f"{request.width}x{request.height}",
            "n": request.count,
            "steps": request.steps,
            "negative_prompt": request.negative_prompt or None,
        }
        ticker = asyncio.create_task(self._elapsed(on_progress), name=f"owui-{job_id}")
        try:
            response = await self._client.post("/api/v1/images/generations", json=body)
        except httpx.HTTPError as exc:
            raise BackendUnavailable.of("backend.unreachable", detail=type(exc).__name__, name=self.name) from exc
        finally:
            await stop_tasks([ticker])
        if response.status_code != 200:
            raise explain(response)
        images = []
        for item in response.json():
            data = await download_image(self._client, str(item.get("url", "")), source=f"Open WebUI ({self.name})")
            images.append(GeneratedImage(data=data, seed=None, infotext=NOT_CONTROLLED))
        return GenerationResult(images=images)

    async def settings(self) -> ImageSettings:
        """The admin's image settings (`/images/config`), or with a user's key just the switch (`/api/config`)."""
        response = await self._client.get("/api/v1/images/config")
        if response.status_code == 200:
            config = response.json()
            return ImageSettings(
                enabled=bool(config.get("ENABLE_IMAGE_GENERATION")),
                engine=str(config.get("IMAGE_GENERATION_ENGINE") or ""),
                model=str(config.get("IMAGE_GENERATION_MODEL") or ""),
                readable=True,
            )
        if response.status_code != 401 or not _detail(response).startswith(NOT_ADMIN):
            raise explain(response)
        try:  # a user sees the switch among the app's features; an older server may not say: assume on
            features = (await self._client.get("/api/config")).json().get("features") or {}
        except (ValueError, AttributeError):
            features = {}
        return ImageSettings(enabled=bool(features.get("enable_image_generation", True)))

    def _model_problem(self, settings: ImageSettings) -> BackendError | None:
        if not settings.enabled:
            return BackendError.of("backend.owui_off")
        if not self.model:
            return None
        if not settings.readable:
            return BackendError.of("backend.owui_model_needs_admin", wanted=self.model)
        if settings.model != self.model:
            configured = settings.model or "(the engine's default)"
            return BackendError.of("backend.owui_model_mismatch", wanted=self.model, configured=configured)
        return None

    async def _elapsed(self, on_progress: ProgressCallback) -> None:
        started = time.monotonic()
        while True:
            await asyncio.sleep(self.note_seconds)
            elapsed = round(time.monotonic() - started)
            on_progress(Progress(note_key="progress_note.owui_elapsed", note_params={"seconds": elapsed}))

    async def interrupt(self, job_id: str) -> None:
        return None  # Open WebUI has no cancel for image generation

    async def health(self) -> BackendHealth:
        try:
            settings = await self.settings()
            response = await self._client.get("/api/v1/images/models")
        except httpx.HTTPError as exc:
            return BackendHealth(ok=False, detail=f"cannot be reached ({type(exc).__name__})")
        except BackendError as exc:
            return BackendHealth(ok=False, detail=exc.user_message)
        if response.status_code != 200:
            return BackendHealth(ok=False, detail=explain(response).user_message)
        models = [str(m.get("id")) for m in response.json() if isinstance(m, dict)]
        problem = self._model_problem(settings)  # generation off, or a `model` that will not be used
        detail = problem.user_message if problem else ""
        return BackendHealth(ok=problem is None, models=models, loaded_model=settings.model or None, detail=detail)


def _detail(response: httpx.Response) -> str:
    try:
        return str(response.json().get("detail", ""))
    except (ValueError, AttributeError):
        return response.text[:200]


def explain(response: httpx.Response) -> BackendError:
    detail = _detail(response)
    status = response.status_code
    if status == 401:
        if detail == "Not authenticated":
            return BackendError.of("backend.owui_no_key", detail=detail)
        return BackendError.of("backend.owui_bad_key", detail=detail)
    if status == 403:
        if detail == "Not authenticated":
            return BackendError.of("backend.owui_no_key", detail=detail)
        return BackendError.of("backend.owui_forbidden", detail=detail)
    if status == 400:  # the engine failed; Open WebUI passes on its words (or "Something went wrong :/")
        if not detail:
            return BackendError.of("backend.owui_engine_failed_no_reason")
        if any(word in detail.lower() for word in TRANSIENT):
            return BackendError.of("backend.owui_engine_failed", retryable=True, reason=detail)
        return BackendError.of("backend.owui_engine_refused", reason=detail)
    if status >= 500:
        return BackendUnavailable.of("backend.owui_failing", detail=detail, status=status)
    return BackendError.of("backend.owui_refused", detail=detail, status=status, reason=detail)
