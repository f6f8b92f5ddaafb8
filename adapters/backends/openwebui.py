"""Open WebUI's images router (`/api/v1/images`): generation through whatever engine its admin configured.

There is no progress: while the single POST runs we report the elapsed time. Result URLs are Open WebUI
file URLs, downloaded with the same Bearer key.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import httpx
from pydantic import SecretStr

from adapters.backends.http import bearer_client
from bot.errors import BackendError, BackendUnavailable
from bot.lifecycle import stop_tasks
from bot.models import GeneratedImage, GenerationRequest, GenerationResult, Progress
from bot.ports import BackendHealth, Capabilities, ProgressCallback

log = logging.getLogger(__name__)


class OpenWebUIBackend:
    """Backend port for Open WebUI. Options: `model` (an id from /images/models), `note_seconds`."""

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
        body = {
            "prompt": request.prompt,
            "model": self.model,
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
            url = str(item.get("url", ""))
            try:
                download = await self._client.get(url)
            except httpx.HTTPError as exc:
                raise BackendError.of("backend.owui_download", retryable=True) from exc
            if download.status_code != 200:
                raise explain(download)
            images.append(GeneratedImage(data=download.content))
        return GenerationResult(images=images)

    async def _elapsed(self, on_progress: ProgressCallback) -> None:
        started = time.monotonic()
        while True:
            await asyncio.sleep(self.note_seconds)
            on_progress(Progress(note=f"generating on Open WebUI for {time.monotonic() - started:.0f} s"))

    async def interrupt(self, job_id: str) -> None:
        return None  # Open WebUI has no cancel for image generation

    async def health(self) -> BackendHealth:
        try:
            response = await self._client.get("/api/v1/images/models")
        except httpx.HTTPError as exc:
            return BackendHealth(ok=False, detail=f"cannot be reached ({type(exc).__name__})")
        if response.status_code != 200:
            return BackendHealth(ok=False, detail=explain(response).user_message)
        models = [str(m.get("id")) for m in response.json() if isinstance(m, dict)]
        return BackendHealth(ok=True, models=models, loaded_model=self.model)


def explain(response: httpx.Response) -> BackendError:
    try:
        detail = str(response.json().get("detail", ""))
    except (ValueError, AttributeError):
        detail = response.text[:200]
    status = response.status_code
    if status == 401:
        return BackendError.of("backend.owui_bad_key", detail=detail)
    if status == 403:
        if detail == "Not authenticated":
            return BackendError.of("backend.owui_no_key", detail=detail)
        return BackendError.of("backend.owui_forbidden", detail=detail)
    if status == 400:
        if not detail:
            return BackendError.of("backend.owui_engine_failed_no_reason", retryable=True)
        return BackendError.of("backend.owui_engine_failed", retryable=True, reason=detail)
    if status >= 500:
        return BackendUnavailable.of("backend.owui_failing", detail=detail, status=status)
    return BackendError.of("backend.owui_refused", detail=detail, status=status, reason=detail)
