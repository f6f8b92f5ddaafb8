"""An Open WebUI images-router stand-in (backends.md §5, checked against open-webui 0.12's
`routers/images.py` and `utils/auth.py`): API-key auth, admin-only config, the `ENABLE_IMAGE_GENERATION`
switch and per-user permission, file URLs that need the same key.

What the real router does with a request body matters here: `CreateImageForm` reads prompt, model, size, n,
steps and negative_prompt and drops anything else (a seed, a sampler). `model` is ignored except with the
automatic1111 engine and an admin's key, where it becomes Open WebUI's *global* model and switches the shared
A1111 checkpoint (`set_image_model`) - for every user, and saved even when the name is bogus.
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

ACCESS_PROHIBITED = (
    "You do not have permission to access this resource. Please contact your administrator for assistance."
)
INVALID_TOKEN = "Your session has expired or the token is invalid. Please sign in again."
API_KEY_NOT_ALLOWED = "Use of API key is not enabled in the environment."
NOT_FOUND = "We could not find what you're looking for :/"
A1111_MODELS = [("sd_xl_base_1.0.safetensors [31e35c80fc]", "sd_xl_base_1.0"),
                ("v1-5-pruned-emaonly.safetensors [6ce0161689]", "v1-5-pruned-emaonly")]  # fmt: skip
COMFYUI_MODELS = ["sd_xl_base_1.0.safetensors", "v1-5-pruned-emaonly.safetensors"]
OPENAI_MODELS = [("dall-e-2", "DALL·E 2"), ("dall-e-3", "DALL·E 3"), ("gpt-image-1", "GPT-IMAGE 1")]


def detail(status: int, text: str) -> web.Response:
    return web.json_response({"detail": text}, status=status)


@dataclass
class OpenWebUISimulator:
    """`users` maps API keys to whether the user has `features.image_generation`; keys in `admins` are admins.

    `enabled`, `engine`, `model`, `image_size`, `image_steps` are the admin's image settings; `a1111_checkpoint`
    is what the shared A1111 behind an automatic1111 engine has loaded; `model_changes` logs every global switch.
    """

    users: dict[str, bool] = field(default_factory=lambda: {"sk-owui": True})
    admins: set[str] = field(default_factory=set)
    enabled: bool = True
    api_keys_enabled: bool = True
    engine: str = "comfyui"
    model: str = ""
    image_size: str = "512x512"
    image_steps: int = 50
    a1111_checkpoint: str = A1111_MODELS[0][0]
    seconds: float = 0.0
    fail_engine: str | None = None
    requests: list[dict[str, Any]] = field(default_factory=list)
    model_changes: list[str] = field(default_factory=list)
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
                web.post("/api/v1/images/config/update", self._update_config),
                web.get("/api/v1/files/{id}/content", self._file),
                web.get("/api/config", self._app_config),
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
            return None, detail(401, "Not authenticated")
        key = header.removeprefix("Bearer ")
        if key not in self.users and key not in self.admins:
            return None, detail(401, INVALID_TOKEN)
        if not self.api_keys_enabled:
            return None, detail(403, API_KEY_NOT_ALLOWED)
        return key, None

    def _admin(self, request: web.Request) -> web.Response | None:
        key, refused = self._user(request)
        if refused:
            return refused
        return None if key in self.admins else detail(401, ACCESS_PROHIBITED)

    def config(self) -> dict[str, Any]:
        """The part of `ImagesConfig` a client can act on (the real one has ~30 more engine fields)."""
        return {
            "ENABLE_IMAGE_GENERATION": self.enabled, "ENABLE_IMAGE_PROMPT_GENERATION": True,
            "IMAGE_GENERATION_ENGINE": self.engine, "IMAGE_GENERATION_MODEL": self.model,
            "IMAGE_SIZE": self.image_size, "IMAGE_STEPS": self.image_steps,
            "AUTOMATIC1111_BASE_URL": "http://127.0.0.1:7860", "COMFYUI_BASE_URL": "http://127.0.0.1:8188",
        }  # fmt: skip

    def set_image_model(self, model: str) -> None:
        """`set_image_model`: saved globally; an A1111 engine also switches the shared checkpoint."""
        self.model = model
        self.model_changes.append(model)
        if self.engine in ("", "automatic1111") and model in {title for title, _ in A1111_MODELS}:
            self.a1111_checkpoint = model  # A1111 refuses an unknown title; Open WebUI swallows that

    async def _config(self, request: web.Request) -> web.Response:
        return self._admin(request) or web.json_response(self.config())

    async def _update_config(self, request: web.Request) -> web.Response:
        refused = self._admin(request)
        if refused:
            return refused
        form = await request.json()
        self.enabled = bool(form.get("ENABLE_IMAGE_GENERATION", self.enabled))
        self.engine = str(form.get("IMAGE_GENERATION_ENGINE", self.engine))
        self.image_size = str(form.get("IMAGE_SIZE") or self.image_size)
        self.set_image_model(str(form.get("IMAGE_GENERATION_MODEL", "")))
        return web.json_response(self.config())

    async def _app_config(self, request: web.Request) -> web.Response:
        key, _ = self._user(request)
        features: dict[str, Any] = {"auth": True, "enable_signup": False}
        if key is not None:  # the rest only for a signed-in user
            features |= {"enable_api_keys": self.api_keys_enabled, "enable_image_generation": self.enabled}
        return web.json_response({"status": True, "name": "Open WebUI", "version": "0.12.4", "features": features})

    async def _models(self, request: web.Request) -> web.Response:
        _, refused = self._user(request)
        if refused:
            return refused
        if self.engine == "openai":
            return web.json_response([{"id": i, "name": n} for i, n in OPENAI_MODELS])
        if self.engine == "comfyui":
            return web.json_response([{"id": m, "name": m} for m in COMFYUI_MODELS])
        return web.json_response([{"id": title, "name": name} for title, name in A1111_MODELS])

    async def _generate(self, request: web.Request) -> web.Response:
        key, refused = self._user(request)
        if refused:
            return refused
        body = await request.json()
        self.requests.append(body)
        if not isinstance(body.get("prompt"), str):
            missing = {"type": "missing", "loc": ["body", "prompt"], "msg": "Field required", "input": body}
            return web.json_response({"detail": [missing]}, status=422)
        admin = key in self.admins
        if not self.enabled or not (admin or self.users.get(str(key), False)):
            return detail(403, ACCESS_PROHIBITED)
        if self.engine in ("", "automatic1111") and body.get("model") and admin:
            self.set_image_model(str(body["model"]))
        if self.fail_engine:
            return detail(400, self.fail_engine)
        if self.seconds:
            await asyncio.sleep(self.seconds)
        size = body.get("size") if "x" in str(body.get("size") or "") else self.image_size
        width, height = (int(part) for part in str(size).split("x"))
        files = []
        for _ in range(int(body.get("n") or 1)):
            file_id = f"file-{next(self._ids)}"
            image = render_image(str(body["prompt"]), next(self._ids), width, height)  # the engine's own seed
            self.files[file_id] = (str(key), encode_png(image, None))
            files.append({"id": file_id, "url": f"/api/v1/files/{file_id}/content", "name": "generated-image.png",
                          "content_type": "image/png"})  # fmt: skip
        return web.json_response(files)

    async def _file(self, request: web.Request) -> web.Response:
        key, refused = self._user(request)
        if refused:
            return refused
        entry = self.files.get(request.match_info["id"])
        if entry is None or (entry[0] != key and key not in self.admins):
            return detail(404, NOT_FOUND)
        return web.Response(body=entry[1], content_type="image/png")


async def serve(port: int, host: str = "127.0.0.1", api_key: str = "sk-owui") -> None:
    """Run until cancelled (`imagebridge simulate openwebui`)."""
    sim = OpenWebUISimulator(users={api_key: True}, seconds=2.0)
    log.info("Open WebUI simulator on %s (key %s)", await sim.start(host, port), api_key)
    try:
        await asyncio.Event().wait()
    finally:
        await sim.stop()
