"""OpenAI-compatible image generation (`/v1/images/generations`) and edits (`/v1/images/edits`): OpenAI itself,
LocalAI and friends.

The call is synchronous: no progress, no cancel. `b64_json` is asked for, except from gpt-image models,
which always answer in base64 and refuse the parameter. Sizes are mapped to the nearest the model accepts.
A model that makes one image per call (dall-e-3) gets one call per image. Links (`url` answers) are fetched
without the API key unless they point at the API's own origin. Edits go as multipart/form-data: `image` for one
file, `image[]` for several (GPT image models take up to 16; dall-e-2 one square PNG, which is inpainting only).
"""

from __future__ import annotations

import asyncio
import base64
import logging
import re
from typing import Any

import httpx
from pydantic import SecretStr

from adapters.backends.downloads import download_image, plain_client, same_origin
from adapters.backends.http import bearer_client
from adapters.backends.openai_uploads import INSTRUCTION_EDITS, MAX_IMAGES, edit_files
from bot.errors import BackendError, BackendUnavailable
from bot.models import GeneratedImage, GenerationRequest, GenerationResult
from bot.ports import BackendHealth, Capabilities, ProgressCallback

log = logging.getLogger(__name__)

SIZES: dict[str, list[str]] = {
    "dall-e-2": ["256x256", "512x512", "1024x1024"],
    "dall-e-3": ["1024x1024", "1792x1024", "1024x1792"],
    "gpt-image-1": ["1024x1024", "1536x1024", "1024x1536"],
}
MAX_N = {"dall-e-3": 1}
B64_ONLY = re.compile(r"^gpt-image")


def nearest_size(model: str, width: int, height: int, sizes: dict[str, list[str]] | None = None) -> str:
    """The accepted size closest in aspect ratio (then area) to the request; unknown models get it as asked."""
    table = sizes if sizes is not None else SIZES
    choices = table.get(model) or next((v for k, v in table.items() if model.startswith(k)), None)
    if not choices:
        return f"{width}x{height}"

    def distance(size: str) -> tuple[float, float]:
        w, h = (int(part) for part in size.split("x"))
        return (abs(w / h - width / height), abs(w * h - width * height))

    return min(choices, key=distance)


class OpenAIImagesBackend:
    """Backend port for OpenAI-compatible image APIs. Options: `model`, `quality`, `sizes` (model -> list)."""

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
        self.kind = "openai"
        self.model = str(options.get("model", "dall-e-3"))
        self.quality: str | None = options.get("quality")
        self.sizes: dict[str, list[str]] = {**SIZES, **options.get("sizes", {})}
        self.capabilities = Capabilities(
            img2img=False,
            upscale=False,
            progress=False,
            previews=False,
            cancel=False,
            max_batch=MAX_N.get(self.model, 10),
            edits=bool(INSTRUCTION_EDITS.match(self.model)),  # dall-e-2 only inpaints where a mask is transparent
            max_references=MAX_IMAGES if INSTRUCTION_EDITS.match(self.model) else 0,
        )
        base = url.rstrip("/")
        self._base = base if base.endswith("/v1") else f"{base}/v1"
        timeout = float(options.get("timeout_seconds", 300))
        self._client = bearer_client(self._base, secrets, timeout, transport)
        self._links = plain_client(timeout, transport)  # image hosts get no API key

    async def aclose(self) -> None:
        await self._client.aclose()
        await self._links.aclose()

    def payload(self, request: GenerationRequest, n: int | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {
            "model": self.model,
            "prompt": request.prompt,
            "n": n if n is not None else min(request.count, self.capabilities.max_batch),
            "size": nearest_size(self.model, request.width, request.height, self.sizes),
        }
        if not B64_ONLY.match(self.model):
            body["response_format"] = "b64_json"
        if self.quality:
            body["quality"] = self.quality
        return body

    async def generate(
        self, job_id: str, request: GenerationRequest, source: bytes | None, on_progress: ProgressCallback
    ) -> GenerationResult:
        if request.kind != "txt2img":
            raise BackendError.of("backend.txt2img_only", name=self.name)
        return await self._batched(request)

    async def edit(
        self,
        job_id: str,
        request: GenerationRequest,
        sources: list[bytes],
        on_progress: ProgressCallback,
        mask: bytes | None = None,
    ) -> GenerationResult:
        """Edit `sources` (the first is the one changed, the others are references) by `request.prompt`."""
        if not sources:
            raise BackendError.of("backend.source_missing")
        files = edit_files(self.model, sources, mask)  # raises for what the model cannot take
        return await self._batched(request, files)

    async def _batched(
        self, request: GenerationRequest, files: list[tuple[str, tuple[str, bytes, str]]] | None = None
    ) -> GenerationResult:
        """Every image asked for, in calls of at most `max_batch`; one failure fails the whole."""
        batch = self.capabilities.max_batch
        counts = [min(batch, request.count - done) for done in range(0, request.count, batch)]
        calls = [asyncio.create_task(self._call(request, n, files)) for n in counts]
        outcomes = await asyncio.gather(*calls, return_exceptions=True)
        failure = next((o for o in outcomes if isinstance(o, BaseException)), None)
        if failure is not None:  # every image was asked for: a part would be charged as the whole
            raise failure
        return GenerationResult(images=[image for part in outcomes if isinstance(part, list) for image in part])

    async def _call(
        self, request: GenerationRequest, n: int, files: list[tuple[str, tuple[str, bytes, str]]] | None = None
    ) -> list[GeneratedImage]:
        try:
            if files is None:
                response = await self._client.post("/images/generations", json=self.payload(request, n))
            else:  # multipart: every form field is text
                fields = {key: str(value) for key, value in self.payload(request, n).items()}
                response = await self._client.post("/images/edits", data=fields, files=files)
        except httpx.HTTPError as exc:
            raise BackendUnavailable.of("backend.unreachable", detail=type(exc).__name__, name=self.name) from exc
        if response.status_code != 200:
            raise explain(response)
        images = []
        for item in response.json().get("data", []):
            if item.get("b64_json"):
                data = base64.b64decode(item["b64_json"])
            elif item.get("url"):
                link = str(item["url"])
                client = self._client if same_origin(link, self._base) else self._links
                data = await download_image(client, link, source=self.name)
            else:
                continue
            images.append(GeneratedImage(data=data, infotext=str(item.get("revised_prompt") or "")))
        return images

    async def interrupt(self, job_id: str) -> None:
        return None  # a synchronous call cannot be stopped on the server

    async def health(self) -> BackendHealth:
        try:
            response = await self._client.get("/models")
        except httpx.HTTPError as exc:
            return BackendHealth(ok=False, detail=f"cannot be reached ({type(exc).__name__})")
        if response.status_code == 401:
            return BackendHealth(ok=False, detail=explain(response).user_message)
        return BackendHealth(ok=response.status_code < 500, models=[self.model], loaded_model=self.model)


def explain(response: httpx.Response) -> BackendError:
    """The `{"error": {message, type, param, code}}` envelope as a user message."""
    try:
        error = response.json().get("error") or {}
    except ValueError:
        error = {}
    message = str(error.get("message") or response.text[:200])
    code = str(error.get("code") or error.get("type") or "")
    status = response.status_code
    if code == "content_policy_violation" or "safety system" in message:
        return BackendError.of("backend.openai_safety", detail=code)
    if status == 401:
        return BackendError.of("backend.openai_bad_key", detail=code)
    if status == 429:
        if "quota" in message.lower() or code == "insufficient_quota":
            return BackendError.of("backend.openai_quota", detail=code)
        return BackendError.of("backend.openai_rate_limited", retryable=True)
    if status >= 500:
        return BackendUnavailable.of("backend.openai_failing", detail=message, status=status)
    return BackendError.of("backend.openai_refused", detail=code, message=message)
