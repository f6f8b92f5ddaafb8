"""HTTP routes of the A1111/Forge simulator: auth, recording, fault injection, endpoints."""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import logging
import secrets
from typing import TYPE_CHECKING, Any

from aiohttp import web
from aiohttp.typedefs import Handler
from PIL import Image

from simulators import images
from simulators.a1111_catalog import (
    LATENT_UPSCALE_MODES,
    SAMPLERS,
    SCHEDULERS,
    loras_json,
    sd_modules_json,
    sd_vae_json,
)
from simulators.a1111_fields import EXTRAS_FIELDS, PNG_INFO_FIELDS, img2img_fields, txt2img_fields
from simulators.a1111_jobs import MAX_PIXELS, decode_input_image, plan_job, unknown_checkpoint
from simulators.a1111_state import RecordedRequest
from simulators.a1111_wire import (
    ApiError,
    http_exception,
    parse_json_body,
    query_bool,
    require_fields,
    server_exception,
    validate_body,
)

if TYPE_CHECKING:
    from simulators.a1111 import A1111Simulator

log = logging.getLogger(__name__)

API = "/sdapi/v1"
# Registered by extensions with a plain @app.get, so --api-auth does not cover them.
_NO_AUTH = frozenset({f"{API}/loras"})
_IGNORED_INFO_KEYS = frozenset({"dpi", "exif", "icc_profile", "jfif", "jfif_version", "jfif_unit", "jfif_density"})


def _try_json(raw: bytes) -> Any:
    try:
        return json.loads(raw) if raw else None
    except (UnicodeDecodeError, json.JSONDecodeError):
        return None


class _Routes:
    """Request handlers bound to one simulator."""

    def __init__(self, sim: A1111Simulator) -> None:
        self.sim = sim
        self.flavour = sim.flavour

    # ----- cross-cutting --------------------------------------------------------------

    @web.middleware
    async def middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        raw = await request.read()
        unmatched = request.match_info.http_exception
        denial = None
        needs_auth = request.path.startswith(API + "/") and request.path not in _NO_AUTH
        if unmatched is None and self.sim.auth is not None and needs_auth:
            denial = self._auth_denial(request)
        await self.sim.record(RecordedRequest(request.method, request.path, _try_json(raw), denial is None))
        if unmatched is not None:
            return web.json_response({"detail": unmatched.reason}, status=unmatched.status)
        if denial is not None:
            return denial
        if request.method == "POST":
            fault = self.sim.take_fault(request.path)
            if fault is not None:
                return web.json_response(fault[1], status=fault[0])
            if self.sim.take_hang(request.path):
                log.info("hanging %s until stop()", request.path)
                await asyncio.get_running_loop().create_future()
        try:
            return await handler(request)
        except ApiError as exc:
            return web.json_response(exc.body, status=exc.status)

    def _auth_denial(self, request: web.Request) -> web.Response | None:
        """FastAPI ``HTTPBasic`` plus ``Api.auth``: None when the credentials are right."""
        assert self.sim.auth is not None
        scheme, _, param = request.headers.get("Authorization", "").partition(" ")
        param = param.strip()
        if scheme.lower() != "basic" or not param:
            detail = "Not authenticated"
        else:
            try:
                user, sep, password = base64.b64decode(param).decode("ascii").partition(":")
            except (binascii.Error, ValueError):
                user, sep, password = "", "", ""
            if not sep:
                detail = "Invalid authentication credentials"
            elif secrets.compare_digest(user, self.sim.auth[0]) and secrets.compare_digest(password, self.sim.auth[1]):
                return None
            else:
                detail = "Incorrect username or password"
        err = http_exception(self.flavour, 401, detail)
        # A1111's middleware re-renders the exception and drops its headers; Forge keeps them.
        headers = {"WWW-Authenticate": "Basic"} if self.flavour == "forge" else None
        return web.json_response(err.body, status=401, headers=headers)

    async def _body(self, request: web.Request) -> object:
        return parse_json_body(self.flavour, await request.read())

    # ----- generation -----------------------------------------------------------------

    async def txt2img(self, request: web.Request) -> web.Response:
        params = validate_body(self.flavour, await self._body(request), txt2img_fields(self.flavour))
        plan = plan_job(self.flavour, "txt2img", params)
        if self.sim.crashes_on(str(params["prompt"])):
            return self._die(request)
        return web.json_response(await self.sim.generate(plan, None))

    async def img2img(self, request: web.Request) -> web.Response:
        params = validate_body(self.flavour, await self._body(request), img2img_fields(self.flavour))
        init_images = params["init_images"]
        if not init_images:
            raise http_exception(self.flavour, 404, "Init image not found")
        if params["mask"]:
            decode_input_image(self.flavour, params["mask"])
        plan = plan_job(self.flavour, "img2img", params)
        if self.sim.crashes_on(str(params["prompt"])):
            return self._die(request)
        return web.json_response(await self.sim.generate(plan, init_images))

    @staticmethod
    def _die(request: web.Request) -> web.Response:
        """The process died running the request: its connection closes with no answer."""
        assert request.transport is not None
        request.transport.close()
        return web.Response(status=200)  # never sent

    async def extra_single_image(self, request: web.Request) -> web.Response:
        params = validate_body(self.flavour, await self._body(request), EXTRAS_FIELDS)
        source = decode_input_image(self.flavour, params["image"])
        upscaler = params["upscaler_1"]

        def check() -> None:
            if upscaler != "None" and upscaler not in {u.name for u in self.sim.upscalers}:
                raise server_exception(self.flavour, "AssertionError", f"could not find upscaler named {upscaler}")

        await self.sim.with_lock("extras", 5, check)
        info: dict[str, object] = {}
        size = source.size
        if upscaler != "None":
            if params["resize_mode"] == 1:
                size = (params["upscaling_resize_w"], params["upscaling_resize_h"])
                info["Postprocess upscale to"] = f"{size[0]}x{size[1]}"
            else:
                factor = params["upscaling_resize"]
                size = (int(source.width * factor), int(source.height * factor))
                info["Postprocess upscale by"] = f"{factor:g}"
            info["Postprocess upscaler"] = upscaler
        if size[0] * size[1] > MAX_PIXELS or min(size) < 1:
            raise server_exception(self.flavour, "OutOfMemoryError", "CUDA out of memory. Tried to allocate 24.00 GiB")
        text = ", ".join(f"{k}: {images.quote_infotext(str(v))}" for k, v in info.items())
        encoded = await asyncio.to_thread(self._upscale, source, size, text)
        return web.json_response({"html_info": f"<p>{text}</p>", "image": encoded})

    @staticmethod
    def _upscale(source: Image.Image, size: tuple[int, int], text: str) -> str:
        parameters = source.info.get("parameters")
        out = source.convert("RGB") if source.size == size else source.convert("RGB").resize(size)
        extra = {"postprocessing": text, "extras": text} if text else None
        return images.b64(images.encode_png(out, parameters if isinstance(parameters, str) else None, extra))

    async def png_info(self, request: web.Request) -> web.Response:
        body = await self._body(request)
        require_fields(self.flavour, body, ["image"])
        params = validate_body(self.flavour, body, PNG_INFO_FIELDS)
        img = decode_input_image(self.flavour, params["image"].strip())
        items = {
            k: v
            for k, v in img.info.items()
            if isinstance(k, str) and isinstance(v, str | int | float) and k not in _IGNORED_INFO_KEYS
        }
        geninfo = items.pop("parameters", None)
        text = geninfo if isinstance(geninfo, str) else ""
        return web.json_response({"info": text, "items": items, "parameters": images.parse_infotext(text)})

    # ----- state ------------------------------------------------------------------------

    async def progress(self, request: web.Request) -> web.Response:
        skip = query_bool(self.flavour, "skip_current_image", request.query.get("skip_current_image"), False)
        opts = self.sim.options
        try:
            every = int(opts.get("show_progress_every_n_steps", 10))
        except (TypeError, ValueError):
            every = 10
        body = self.sim.state.progress_body(
            skip_current_image=skip, previews=bool(opts.get("live_previews_enable", True)), every=every
        )
        return web.json_response(body)

    async def interrupt(self, request: web.Request) -> web.Response:
        self.sim.interrupt()
        return web.json_response({})

    async def skip(self, request: web.Request) -> web.Response:
        self.sim.skip()
        return web.json_response(None)

    async def get_options(self, request: web.Request) -> web.Response:
        return web.json_response(self.sim.options)

    async def set_options(self, request: web.Request) -> web.Response:
        body = await self._body(request)
        if not isinstance(body, dict):
            validate_body(self.flavour, body, {})  # raises the flavour's "not a dict" 422
            raise AssertionError("unreachable")
        catalog, opts = self.sim.catalog, self.sim.options
        if self.flavour == "a1111":
            name = body.get("sd_model_checkpoint")
            found = catalog.find(name)
            if name is not None and found is None:
                raise unknown_checkpoint(self.flavour, name)
            for key, value in body.items():
                changed = opts.get(key) != value
                opts[key] = value
                if key == "sd_model_checkpoint" and changed and found is not None:
                    await self.sim.load_from_options(found)  # waits for the queue, then loads
        else:
            for key, value in body.items():
                if value == opts.get(key):
                    continue
                if key == "sd_model_checkpoint" and value is not None and catalog.find(value) is None:
                    raise unknown_checkpoint(self.flavour, value)
                opts[key] = value  # Forge defers the load to the next generation
        return web.json_response(None)

    async def refresh(self, request: web.Request) -> web.Response:
        async with self.sim.lock:
            pass
        return web.json_response(None)

    # ----- lists ------------------------------------------------------------------------

    async def sd_models(self, request: web.Request) -> web.Response:
        return web.json_response([c.as_json() for c in self.sim.catalog.checkpoints])

    async def samplers(self, request: web.Request) -> web.Response:
        return web.json_response([s.as_json() for s in SAMPLERS])

    async def schedulers(self, request: web.Request) -> web.Response:
        return web.json_response([s.as_json() for s in SCHEDULERS])

    async def upscalers(self, request: web.Request) -> web.Response:
        return web.json_response([u.as_json() for u in self.sim.upscalers])

    async def latent_upscale_modes(self, request: web.Request) -> web.Response:
        return web.json_response([{"name": m} for m in LATENT_UPSCALE_MODES])

    async def sd_vae(self, request: web.Request) -> web.Response:
        return web.json_response(sd_vae_json(self.sim.modules))

    async def sd_modules(self, request: web.Request) -> web.Response:
        return web.json_response(sd_modules_json(self.sim.modules))

    async def loras(self, request: web.Request) -> web.Response:
        return web.json_response(loras_json(self.sim.loras))

    async def empty_list(self, request: web.Request) -> web.Response:
        return web.json_response([])

    async def embeddings(self, request: web.Request) -> web.Response:
        return web.json_response({"loaded": {}, "skipped": {}})


def build_app(sim: A1111Simulator) -> web.Application:
    """The aiohttp application serving ``sim``."""
    r = _Routes(sim)
    app = web.Application(middlewares=[r.middleware], client_max_size=256 * 1024 * 1024)
    app.add_routes(
        [
            web.post(f"{API}/txt2img", r.txt2img),
            web.post(f"{API}/img2img", r.img2img),
            web.post(f"{API}/extra-single-image", r.extra_single_image),
            web.post(f"{API}/png-info", r.png_info),
            web.get(f"{API}/progress", r.progress),
            web.post(f"{API}/interrupt", r.interrupt),
            web.post(f"{API}/skip", r.skip),
            web.get(f"{API}/options", r.get_options),
            web.post(f"{API}/options", r.set_options),
            web.post(f"{API}/refresh-checkpoints", r.refresh),
            web.get(f"{API}/sd-models", r.sd_models),
            web.get(f"{API}/samplers", r.samplers),
            web.get(f"{API}/schedulers", r.schedulers),
            web.get(f"{API}/upscalers", r.upscalers),
            web.get(f"{API}/latent-upscale-modes", r.latent_upscale_modes),
            web.get(f"{API}/prompt-styles", r.empty_list),
            web.get(f"{API}/embeddings", r.embeddings),
            web.get(f"{API}/loras", r.loras),
        ]
    )
    if sim.flavour == "forge":
        app.router.add_get(f"{API}/sd-modules", r.sd_modules)
    else:
        app.router.add_get(f"{API}/sd-vae", r.sd_vae)
        app.router.add_post(f"{API}/refresh-vae", r.refresh)
    return app
