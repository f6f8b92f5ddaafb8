"""An OpenAI Images API stand-in (backends.md §6): sizes and `n` per model, the error envelope, b64/url output.
`/v1/images/edits` (multipart) is in simulators/openai_edits.py.

`url` answers link to a separate origin (Azure Blob with SAS query strings, as DALL·E's links do) that expires
them after `url_ttl_seconds` and records the headers each download brought.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from simulators import openai_edits
from simulators.blob_storage import BlobStorage
from simulators.images import b64, encode_png, render_image
from simulators.serving import start_app

log = logging.getLogger(__name__)

SIZES = {
    "dall-e-2": ["256x256", "512x512", "1024x1024"],
    "dall-e-3": ["1024x1024", "1792x1024", "1024x1792"],
    "gpt-image-1": ["1024x1024", "1536x1024", "1024x1536", "auto"],
}
MAX_PROMPT = {"dall-e-2": 1000, "dall-e-3": 4000, "gpt-image-1": 32000}


def envelope(status: int, message: str, kind: str, param: str | None = None, code: str | None = None) -> web.Response:
    body = {"error": {"message": message, "type": kind, "param": param, "code": code}}
    return web.json_response(body, status=status)


@dataclass
class OpenAIImagesSimulator:
    """`/v1/images/generations`, `/v1/images/edits` and `/v1/models`; `api_key` is the one accepted key.

    Images come at the size asked for (`render_size` forces a square side, for benches). `always_url` plays an
    OpenAI-compatible server that answers with links whatever `response_format` says.
    """

    api_key: str = "sk-test"
    render_size: int | None = None
    requests: list[dict[str, Any]] = field(default_factory=list)
    edit_requests: list[dict[str, Any]] = field(
        default_factory=list
    )  # form fields, and files as (field, name, type, size)
    refuse_words: tuple[str, ...] = ("forbidden",)
    fail_next: list[tuple[int, str, str]] = field(default_factory=list)
    always_url: bool = False
    url_ttl_seconds: float = 3600.0
    url: str = ""
    _runner: web.AppRunner | None = None

    def __post_init__(self) -> None:
        self.blob = BlobStorage(style="azure", ttl_seconds=self.url_ttl_seconds)
        self._images = itertools.count(1)

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        app = web.Application(client_max_size=17 * 50 * 1024 * 1024)  # 16 images of up to 50 MB, and a mask
        app.add_routes(
            [
                web.post("/v1/images/generations", self._generate),
                web.post("/v1/images/edits", self._edit),
                web.get("/v1/models", self._models),
            ]
        )
        self._runner, self.url = await start_app(app, host, port)
        self.blob.ttl_seconds = self.url_ttl_seconds
        await self.blob.start(host)
        return self.url

    async def stop(self) -> None:
        await self.blob.stop()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    def next_number(self) -> int:
        """A new image number: this API has no seed, so every image differs, even for the same prompt."""
        return next(self._images)

    async def _edit(self, request: web.Request) -> web.Response:
        return await openai_edits.handle(self, request)

    def _authorised(self, request: web.Request) -> bool:
        return request.headers.get("Authorization") == f"Bearer {self.api_key}"

    async def _models(self, request: web.Request) -> web.Response:
        if not self._authorised(request):
            return envelope(401, "Incorrect API key provided.", "invalid_request_error", code="invalid_api_key")
        return web.json_response({"object": "list", "data": [{"id": m, "object": "model"} for m in SIZES]})

    async def _generate(self, request: web.Request) -> web.Response:
        if not self._authorised(request):
            return envelope(401, "Incorrect API key provided.", "invalid_request_error", code="invalid_api_key")
        body = await request.json()
        self.requests.append(body)
        if self.fail_next:
            status, kind, message = self.fail_next.pop(0)
            return envelope(status, message, kind)
        problem = self._check(body)
        if problem is not None:
            return problem
        model = body.get("model", "dall-e-2")
        prompt = str(body["prompt"])
        width, height = self._size(body)
        as_url = self.always_url or (body.get("response_format", "url") == "url" and not model.startswith("gpt-image"))
        images = []
        for _ in range(int(body.get("n", 1))):
            number = next(self._images)  # no seed in this API: every image differs, even for the same prompt
            data = encode_png(render_image(prompt, number, width, height), None)
            if as_url:
                item: dict[str, Any] = {"url": self.blob.put(f"img-{number}.png", data, "image/png")}
            else:
                item = {"b64_json": b64(data)}
            if model == "dall-e-3":
                item["revised_prompt"] = f"{prompt}, highly detailed"
            images.append(item)
        response: dict[str, Any] = {"created": int(time.time()), "data": images}
        if model.startswith("gpt-image"):
            response["usage"] = {"input_tokens": 10, "output_tokens": 100, "total_tokens": 110}
        return web.json_response(response)

    def _size(self, body: dict[str, Any]) -> tuple[int, int]:
        if self.render_size:
            return self.render_size, self.render_size
        size = str(body.get("size") or "auto")
        if size == "auto":
            return 1024, 1024
        width, height = (int(part) for part in size.split("x"))
        return width, height

    def _check(self, body: dict[str, Any]) -> web.Response | None:
        model = body.get("model", "dall-e-2")
        bad = "invalid_request_error"
        if model not in SIZES:
            return envelope(404, f"The model '{model}' does not exist.", bad, "model", "model_not_found")
        prompt = body.get("prompt")
        if not isinstance(prompt, str) or not prompt:
            return envelope(400, "Missing required parameter: 'prompt'.", bad, "prompt")
        if len(prompt) > MAX_PROMPT[model]:
            return envelope(400, f"Prompt is too long for {model}.", bad, "prompt", "string_above_max_length")
        if any(word in prompt.lower() for word in self.refuse_words):
            message = "Your request was rejected as a result of our safety system."
            return envelope(400, message, bad, None, "content_policy_violation")
        n = body.get("n", 1)
        if not isinstance(n, int):
            return envelope(400, f"Invalid type for 'n': expected an integer, but got {type(n).__name__} instead.", bad,
                            "n", "invalid_type")  # fmt: skip
        if n < 1:
            message = f"Invalid 'n': integer below minimum value. Expected a value >= 1, but got {n} instead."
            return envelope(400, message, bad, "n", "integer_below_min_value")
        if n > 10:
            message = f"Invalid 'n': integer above maximum value. Expected a value <= 10, but got {n} instead."
            return envelope(400, message, bad, "n", "integer_above_max_value")
        if model == "dall-e-3" and n != 1:
            return envelope(400, "You must provide n=1 for this model.", bad)
        if body.get("size") is not None and body["size"] not in SIZES[model]:
            if model == "dall-e-3":  # its own words, as OpenAI answers them
                return envelope(400, "The size is not supported by this model.", bad, None, "invalid_size")
            return envelope(400, f"'{body['size']}' is not one of {SIZES[model]} - 'size'", bad, "size")
        if "response_format" in body and model.startswith("gpt-image"):
            return envelope(400, "Unknown parameter: 'response_format'.", bad, "response_format", "unknown_parameter")
        if body.get("response_format", "url") not in ("url", "b64_json"):
            return envelope(400, "Invalid response_format.", bad, "response_format")
        return None


async def serve(port: int, host: str = "127.0.0.1", api_key: str = "sk-test") -> None:
    """Run until cancelled (`imagebridge simulate openai`)."""
    sim = OpenAIImagesSimulator(api_key=api_key)
    log.info("OpenAI images simulator on %s (key %s)", await sim.start(host, port), api_key)
    try:
        await asyncio.Event().wait()
    finally:
        await sim.stop()
