"""The AUTOMATIC1111 / Forge / SD.Next WebUI API client (`/sdapi/v1`).

The WebUI holds the connection open for the whole job and serialises jobs behind one lock, so
reads get long timeouts; progress comes from polling the global `/progress` while our request runs.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import logging
from typing import Any

import httpx
from pydantic import SecretStr

from adapters.backends.a1111_errors import explain, unreachable
from bot.errors import BackendError
from bot.lifecycle import stop_tasks
from bot.models import GeneratedImage, GenerationRequest, GenerationResult, Progress
from bot.ports import BackendHealth, Capabilities, Inventory, ProgressCallback

log = logging.getLogger(__name__)


class A1111Backend:
    """Backend port for A1111-compatible WebUIs (`kind` a1111, forge or sdnext)."""

    def __init__(
        self,
        name: str,
        url: str,
        *,
        kind: str = "a1111",
        username: str | None = None,
        password: SecretStr | None = None,
        timeout_seconds: float = 900,
        connect_timeout_seconds: float = 10,
        poll_interval_seconds: float = 0.5,
        previews: bool = True,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.name = name
        self.kind = kind
        self.capabilities = Capabilities(previews=previews, max_batch=8, variations=True, hires=kind != "sdnext")
        self.poll_interval = poll_interval_seconds
        self.previews = previews
        auth = httpx.BasicAuth(username, password.get_secret_value() if password else "") if username else None
        self._client = httpx.AsyncClient(
            base_url=f"{url.rstrip('/')}/sdapi/v1",
            auth=auth,
            timeout=httpx.Timeout(timeout_seconds, connect=connect_timeout_seconds),
            transport=transport,
        )
        self._poll_client = httpx.AsyncClient(
            base_url=f"{url.rstrip('/')}/sdapi/v1", auth=auth, timeout=httpx.Timeout(10.0), transport=transport
        )
        self._running: str | None = None

    def __repr__(self) -> str:
        return f"A1111Backend(name={self.name!r}, kind={self.kind!r})"

    async def aclose(self) -> None:
        await self._client.aclose()
        await self._poll_client.aclose()

    # ---- the port ------------------------------------------------------------------------------

    async def generate(
        self, job_id: str, request: GenerationRequest, source: bytes | None, on_progress: ProgressCallback
    ) -> GenerationResult:
        if request.kind == "upscale":
            return await self._upscale(request, source)
        path = "/img2img" if request.kind == "img2img" else "/txt2img"
        body = self.payload(job_id, request, source)
        self._running = job_id
        poller = asyncio.create_task(self._poll(request, on_progress), name=f"poll-{job_id}")
        try:
            data = await self._post(path, body)
        finally:
            self._running = None
            await stop_tasks([poller])
        return self._result(data, request)

    async def interrupt(self, job_id: str) -> None:
        if self._running != job_id:
            return
        try:
            await self._poll_client.post("/interrupt")
        except httpx.HTTPError as exc:
            raise unreachable(self.name, exc) from exc

    async def health(self) -> BackendHealth:
        try:
            models = await self._poll_client.get("/sd-models")
            options = await self._poll_client.get("/options")
        except httpx.HTTPError as exc:
            return BackendHealth(ok=False, detail=unreachable(self.name, exc).user_message)
        if models.status_code != 200 or options.status_code != 200:
            status = models.status_code if models.status_code != 200 else options.status_code
            return BackendHealth(
                ok=False,
                detail=explain(status, models.text if status == models.status_code else options.text).user_message,
            )
        titles = [str(item.get("title")) for item in models.json() if isinstance(item, dict)]
        loaded = options.json().get("sd_model_checkpoint") if isinstance(options.json(), dict) else None
        inventory = await self.inventory(titles)
        return BackendHealth(ok=True, models=titles, loaded_model=str(loaded) if loaded else None, inventory=inventory)

    async def inventory(self, titles: list[str]) -> Inventory:
        """What the WebUI lists: samplers, schedulers, LoRAs, VAEs / Forge modules, upscalers (None if not listed)."""
        modules = "/sd-modules" if self.kind == "forge" else "/sd-vae"
        specs = (
            ("/samplers", ("name", "aliases")),
            ("/schedulers", ("name", "label", "aliases")),
            ("/loras", ("name", "alias")),
            (modules, ("model_name", "filename")),
            ("/upscalers", ("name",)),
        )
        lists = await asyncio.gather(*(self._list(path) for path, _ in specs))
        samplers, schedulers, loras, vaes, upscalers = (
            None if items is None else _names(items, keys) for items, (_, keys) in zip(lists, specs, strict=True)
        )
        return Inventory(
            checkpoints=frozenset(titles),
            modules=vaes,
            loras=loras,
            samplers=samplers,
            schedulers=schedulers,
            upscalers=upscalers,
        )

    async def _list(self, path: str) -> list[Any] | None:
        """A list endpoint's items, or None when this WebUI does not have it (SD.Next: no /schedulers)."""
        try:
            response = await self._poll_client.get(path)
            data = response.json() if response.status_code == 200 else None
        except (httpx.HTTPError, ValueError):
            return None
        return data if isinstance(data, list) else None

    # ---- requests ------------------------------------------------------------------------------

    def payload(self, job_id: str, request: GenerationRequest, source: bytes | None) -> dict[str, Any]:
        """The JSON body for txt2img / img2img, with every value set (the API's defaults are not the UI's)."""
        override = {"sd_model_checkpoint": request.checkpoint, **request.override_settings}
        body: dict[str, Any] = {
            "prompt": request.prompt,
            "negative_prompt": request.negative_prompt,
            "seed": request.seed,
            "sampler_name": request.sampler,
            "steps": request.steps,
            "cfg_scale": request.cfg_scale,
            "width": request.width,
            "height": request.height,
            "batch_size": request.count,
            "n_iter": 1,
            "override_settings": override,
            "override_settings_restore_afterwards": False,
            "send_images": True,
            "save_images": False,
        }
        if request.scheduler and self.kind != "sdnext":
            body["scheduler"] = request.scheduler
        if request.distilled_cfg_scale is not None and self.kind == "forge":
            body["distilled_cfg_scale"] = request.distilled_cfg_scale
        if request.subseed is not None and request.subseed_strength > 0:
            body["subseed"] = request.subseed
            body["subseed_strength"] = request.subseed_strength
        if self.kind != "sdnext":
            body["force_task_id"] = job_id
        if request.kind == "img2img":
            if source is None:
                raise BackendError.of("backend.source_missing")
            body["init_images"] = [base64.b64encode(source).decode()]
            body["denoising_strength"] = request.denoising_strength or 0.6
            body["resize_mode"] = 1
        elif request.hires is not None:
            body.update(self._hires(request))
        return body

    def _hires(self, request: GenerationRequest) -> dict[str, Any]:
        """txt2img's hires fix fields; Forge's hires pass has its own CFG (default 1.0), so it gets the preset's."""
        hires = request.hires
        assert hires is not None
        fields: dict[str, Any] = {
            "enable_hr": True,
            "hr_upscaler": hires.upscaler,
            "hr_scale": hires.scale,
            "hr_resize_x": hires.resize_x,
            "hr_resize_y": hires.resize_y,
            "hr_second_pass_steps": hires.second_pass_steps,
            "denoising_strength": hires.denoising_strength,
        }
        if self.kind == "forge":
            fields["hr_cfg"] = request.cfg_scale
            if request.distilled_cfg_scale is not None:
                fields["hr_distilled_cfg"] = request.distilled_cfg_scale
        return fields

    async def _upscale(self, request: GenerationRequest, source: bytes | None) -> GenerationResult:
        if source is None:
            raise BackendError.of("backend.upscale_source_missing")
        body = {
            "image": base64.b64encode(source).decode(),
            "upscaling_resize": request.upscale_factor,
            "upscaler_1": request.upscaler,
        }
        data = await self._post("/extra-single-image", body)
        image = data.get("image")
        if not isinstance(image, str) or not image:
            raise BackendError.of("backend.upscaler_no_image", retryable=True)
        return GenerationResult(images=[GeneratedImage(data=_decode(image), seed=request.seed)])

    async def _post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        try:
            response = await self._client.post(path, json=body)
        except httpx.HTTPError as exc:
            raise unreachable(self.name, exc) from exc
        if response.status_code != 200:
            raise explain(response.status_code, response.text)
        try:
            data = response.json()
        except ValueError as exc:
            raise BackendError.of("backend.not_json", retryable=True, detail=response.text[:200]) from exc
        if not isinstance(data, dict):
            raise BackendError.of("backend.bad_json_shape", retryable=True)
        return data

    def _result(self, data: dict[str, Any], request: GenerationRequest) -> GenerationResult:
        raw_images = data.get("images")
        if not isinstance(raw_images, list):
            raise BackendError.of("backend.no_images_list", retryable=True)
        info = _parse_info(data.get("info"))
        _check_model(info, request.checkpoint)
        first = int(info.get("index_of_first_image", 0) or 0)
        seeds = info.get("all_seeds") or []
        infotexts = info.get("infotexts") or []
        images = []
        # Forge appends extra images (ControlNet maps) and A1111 may prepend a grid: keep the count asked for.
        for position, encoded in enumerate(raw_images[first : first + request.count]):
            seed = seeds[position] if position < len(seeds) else None
            text = infotexts[position] if position < len(infotexts) else ""
            images.append(
                GeneratedImage(data=_decode(encoded), seed=int(seed) if seed is not None else None, infotext=str(text))
            )
        interrupted = bool(info.get("interrupted")) if isinstance(info, dict) else False
        return GenerationResult(images=images, interrupted=interrupted)

    async def _poll(self, request: GenerationRequest, on_progress: ProgressCallback) -> None:
        """Poll the global progress while our request is in flight."""
        params = {"skip_current_image": "false" if self.previews else "true"}
        last_preview: str | None = None
        while True:
            await asyncio.sleep(self.poll_interval)
            try:
                response = await self._poll_client.get("/progress", params=params)
                data = response.json() if response.status_code == 200 else None
            except (httpx.HTTPError, ValueError):
                continue
            if not isinstance(data, dict):
                continue
            state = data.get("state") or {}
            job = str(state.get("job", ""))
            preview = data.get("current_image")
            progress = Progress(
                fraction=float(data.get("progress") or 0.0),
                step=state.get("sampling_step"),
                steps=state.get("sampling_steps"),
                eta_seconds=float(data.get("eta_relative") or 0.0) or None,
                note_key="progress_note.loading_model" if job == "load model" else None,
            )
            if isinstance(preview, str) and preview and preview != last_preview:
                last_preview = preview
                with contextlib.suppress(ValueError):
                    progress.preview = _decode(preview)
            if job or progress.fraction > 0:
                on_progress(progress)


def _check_model(info: dict[str, Any], checkpoint: str) -> None:
    """A WebUI that lacks the asked checkpoint (or fails to load it) answers 200 with the loaded model's image."""
    name, short = str(info.get("sd_model_name") or "").lower(), str(info.get("sd_model_hash") or "").lower()
    if not name and not short:
        return
    bare, _, tail = checkpoint.lower().partition(" [")
    stem = bare.replace("\\", "/").rsplit("/", 1)[-1]
    stem = stem.rsplit(".", 1)[0] if stem.endswith((".safetensors", ".ckpt", ".pt", ".gguf", ".sft")) else stem
    if name == stem or (short and short in (stem, tail.rstrip("]"))):
        return
    raise BackendError.of("backend.wrong_checkpoint", asked=checkpoint, ran=info.get("sd_model_name") or short)


def _names(items: list[Any], keys: tuple[str, ...]) -> frozenset[str]:
    """Every name an item answers to, lower-cased (file paths by base name)."""
    names: set[str] = set()
    for item in items:
        if not isinstance(item, dict):
            continue
        for key in keys:
            value = item.get(key)
            for name in value if isinstance(value, list) else [value]:
                if isinstance(name, str) and name:
                    names.add(name.replace("\\", "/").rsplit("/", 1)[-1].lower())
    return frozenset(names)


def _decode(value: str) -> bytes:
    if value.startswith("data:"):
        value = value.split(",", 1)[-1]
    try:
        return base64.b64decode(value, validate=True)
    except ValueError as exc:
        raise BackendError.of("backend.bad_base64", retryable=True) from exc


def _parse_info(value: Any) -> dict[str, Any]:
    if isinstance(value, dict):
        return value
    if isinstance(value, str):
        with contextlib.suppress(ValueError):
            parsed = json.loads(value)
            if isinstance(parsed, dict):
                return parsed
    return {}
