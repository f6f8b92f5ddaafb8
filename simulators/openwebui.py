"""An Open WebUI images-router stand-in (backends.md §5): Bearer auth (JWT-free: API keys only), the admin's
`ENABLE_IMAGE_GENERATION` switch and per-user permission, file URLs that need the same key.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from simulators.images import encode_png, render_image
from simulators.serving import start_app

log = logging.getLogger(__name__)


@dataclass
class OpenWebUISimulator:
    """`users` maps API keys to whether the user has `features.image_generation`."""

    users: dict[str, bool] = field(default_factory=lambda: {"sk-owui": True})
    enabled: bool = True
    api_keys_enabled: bool = True
    engine: str = "comfyui"
    seconds: float = 0.0
    fail_engine: str | None = None
    requests: list[dict[str, Any]] = field(default_factory=list)
    url: str = ""

    def __post_init__(self) -> None:
        self.files: dict[str, tuple[str, bytes]] = {}
        self._ids = itertools.count(1)
        self._runner: web.AppRunner | None = None

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        app = web.Application()
        app.add_routes(
            [
                web.post("/api/v1/images/generations", self._generate),
                web.get("/api/v1/images/models", self._models),
                web.get("/api/v1/images/config", self._config),
                web.get("/api/v1/files/{id}/content", self._file),
            ]
        )
        self._runner, self.url = await start_app(app, host, port)
        return self.url

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    def _user(self, request: web.Request) -> tuple[str | None, web.Response | None]:
        header = request.headers.get("Authorization", "")
        if not header.startswith("Bearer "):
            return None, web.json_response({"detail": "Not authenticated"}, status=403)
        key = header.removeprefix("Bearer ")
        if key not in self.users:
            return None, web.json_response({"detail": "Your session has expired or the token is invalid."}, status=401)
        if not self.api_keys_enabled:
            return None, web.json_response({"detail": "API key usage is disabled."}, status=403)
        return key, None

    async def _models(self, request: web.Request) -> web.Response:
        _, refused = self._user(request)
        if refused:
            return refused
        return web.json_response([{"id": "sd_xl_base_1.0.safetensors", "name": "sd_xl_base_1.0"}])

    async def _config(self, request: web.Request) -> web.Response:
        _, refused = self._user(request)
        return refused or web.json_response(
            {"ENABLE_IMAGE_GENERATION": self.enabled, "IMAGE_GENERATION_ENGINE": self.engine}
        )

    async def _generate(self, request: web.Request) -> web.Response:
        key, refused = self._user(request)
        if refused:
            return refused
        body = await request.json()
        self.requests.append(body)
        if not self.enabled or not self.users[str(key)]:
            return web.json_response({"detail": "You do not have permission to access this resource."}, status=403)
        if self.fail_engine:
            return web.json_response({"detail": self.fail_engine}, status=400)
        if self.seconds:
            await asyncio.sleep(self.seconds)
        width, height = (int(part) for part in str(body.get("size") or "512x512").split("x"))
        urls = []
        for index in range(int(body.get("n") or 1)):
            file_id = f"file-{next(self._ids)}"
            image = render_image(str(body["prompt"]), index, min(width, 64), min(height, 64))
            self.files[file_id] = (str(key), encode_png(image, None))
            urls.append({"url": f"/api/v1/files/{file_id}/content"})
        return web.json_response(urls)

    async def _file(self, request: web.Request) -> web.Response:
        _, refused = self._user(request)
        if refused:
            return refused
        entry = self.files.get(request.match_info["id"])
        if entry is None:
            return web.json_response({"detail": "We could not find what you're looking for :/"}, status=404)
        return web.Response(body=entry[1], content_type="image/png")


async def serve(port: int, host: str = "127.0.0.1", api_key: str = "sk-owui") -> None:
    """Run until cancelled (`imagebridge simulate openwebui`)."""
    sim = OpenWebUISimulator(users={api_key: True}, seconds=2.0)
    log.info("Open WebUI simulator on %s (key %s)", await sim.start(host, port), api_key)
    try:
        await asyncio.Event().wait()
    finally:
        await sim.stop()
