"""One txt2img/img2img job of the simulated server: its settings, its pictures, its ``info``.

``plan_job`` turns a validated request model into a ``JobPlan`` (seeds resolved, sizes
floored to 8, sampler and scheduler resolved the way A1111 silently does it);
``render_batch`` draws one batch; ``info_json`` is ``Processed.js()``.
"""

from __future__ import annotations

import json
import logging
import random
from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Any, Literal

from PIL import Image

from simulators import images
from simulators.a1111_catalog import (
    ALWAYSON_SCRIPTS,
    LATENT_UPSCALE_MODES,
    SELECTABLE_SCRIPTS,
    UPSCALER_NAMES,
    Checkpoint,
    Flavour,
    resolve_sampler,
)
from simulators.a1111_wire import ApiError, http_exception, server_exception

log = logging.getLogger(__name__)

JobKind = Literal["txt2img", "img2img"]

# Anything larger than this many pixels "runs out of VRAM".
MAX_PIXELS = 4096 * 4096


def _random_seed() -> int:
    return random.randrange(4294967294)


def _floor8(value: int) -> int:
    return max(8, value - value % 8)


@dataclass
class JobPlan:
    """Everything a generation needs, resolved from the request model."""

    kind: JobKind
    params: dict[str, Any]
    prompt: str
    negative_prompt: str
    seed: int
    subseed: int
    subseed_strength: float
    sampler: str
    scheduler: str
    steps: int
    cfg_scale: float
    width: int
    height: int
    batch_size: int
    n_iter: int
    denoising_strength: float | None
    distilled_cfg_scale: float | None
    override_checkpoint: object
    restore_afterwards: bool
    send_images: bool
    hires_steps: int = 0
    hires_upscaler: str | None = None
    hires_width: int = 0
    hires_height: int = 0
    init_images: list[Image.Image] = field(default_factory=list)

    @property
    def out_size(self) -> tuple[int, int]:
        if self.hires_steps:
            return self.hires_width, self.hires_height
        return self.width, self.height

    @property
    def passes(self) -> list[int]:
        """Sampling steps of each pass of one batch (two with hires fix)."""
        return [self.steps, self.hires_steps] if self.hires_steps else [self.steps]

    @property
    def image_count(self) -> int:
        return self.batch_size * self.n_iter

    @property
    def all_seeds(self) -> list[int]:
        step = 1 if self.subseed_strength == 0 else 0
        return [self.seed + i * step for i in range(self.image_count)]

    @property
    def all_subseeds(self) -> list[int]:
        return [self.subseed + i for i in range(self.image_count)]

    def is_black(self, checkpoint: Checkpoint) -> bool:
        """Flux without the Simple scheduler and cfg 1 decodes to an all-black image."""
        return checkpoint.is_flux and (self.scheduler != "Simple" or self.cfg_scale != 1.0)


def _check_scripts(flavour: Flavour, params: dict[str, Any]) -> None:
    name = params.get("script_name")
    if name and name.lower() not in SELECTABLE_SCRIPTS:
        raise http_exception(flavour, 422, f"Script '{name}' not found")
    for title in params.get("alwayson_scripts") or {}:
        if str(title).lower() not in ALWAYSON_SCRIPTS[flavour]:
            raise http_exception(flavour, 422, f"always on script {title} not found")


def plan_job(flavour: Flavour, kind: JobKind, params: dict[str, Any]) -> JobPlan:
    """Resolve a validated request model into a plan; 422 for unknown scripts."""
    _check_scripts(flavour, params)
    sampler, scheduler = resolve_sampler(params["sampler_name"] or params["sampler_index"], params["scheduler"])
    seed = params["seed"] if params["seed"] != -1 else _random_seed()
    subseed = params["subseed"] if params["subseed"] != -1 else _random_seed()
    overrides = params["override_settings"] or {}
    plan = JobPlan(
        kind=kind,
        params=params,
        prompt=params["prompt"],
        negative_prompt=params["negative_prompt"],
        seed=seed,
        subseed=subseed,
        subseed_strength=params["subseed_strength"],
        sampler=sampler,
        scheduler=scheduler,
        steps=params["steps"],
        cfg_scale=params["cfg_scale"],
        width=_floor8(params["width"]),
        height=_floor8(params["height"]),
        batch_size=max(1, params["batch_size"]),
        n_iter=max(1, params["n_iter"]),
        denoising_strength=params["denoising_strength"],
        distilled_cfg_scale=params.get("distilled_cfg_scale"),
        override_checkpoint=overrides.get("sd_model_checkpoint"),
        restore_afterwards=params["override_settings_restore_afterwards"],
        send_images=params["send_images"],
    )
    if kind == "txt2img" and params["enable_hr"]:
        plan.hires_steps = params["hr_second_pass_steps"] or plan.steps
        plan.hires_upscaler = params["hr_upscaler"]
        plan.hires_width, plan.hires_height = hires_target(plan.width, plan.height, params)
    return plan


def hires_target(width: int, height: int, params: dict[str, Any]) -> tuple[int, int]:
    """processing.py calculate_target_resolution: hr_scale, or one side with the aspect kept, or both sides
    (the upscale covers the box and is cropped to it); the latent makes each a multiple of 8."""
    x, y = params["hr_resize_x"], params["hr_resize_y"]
    if not x and not y:
        return _floor8(int(width * params["hr_scale"])), _floor8(int(height * params["hr_scale"]))
    if not y:
        return _floor8(x), _floor8(x * height // width)
    if not x:
        return _floor8(y * width // height), _floor8(y)
    return _floor8(x), _floor8(y)


def check_in_job(flavour: Flavour, plan: JobPlan, installed: Collection[str] = UPSCALER_NAMES) -> None:
    """Failures that surface once processing starts: a hires upscaler not installed (the name must match
    exactly: `x.name == hr_upscaler` over shared.sd_upscalers), out of memory."""
    upscaler = plan.hires_upscaler
    if plan.hires_steps and upscaler and upscaler not in LATENT_UPSCALE_MODES and upscaler not in installed:
        raise server_exception(flavour, "Exception", f"could not find upscaler named {upscaler}")
    w, h = plan.out_size
    if w * h > MAX_PIXELS:
        gib = w * h * 4 * 4 * plan.batch_size / 2**30
        raise server_exception(
            flavour,
            "OutOfMemoryError",
            f"CUDA out of memory. Tried to allocate {gib:.2f} GiB (GPU 0; 23.99 GiB total capacity; "
            "17.12 GiB already allocated; 3.90 GiB free; 18.01 GiB reserved in total by PyTorch)",
        )


def infotext(plan: JobPlan, checkpoint: Checkpoint, version: str, index: int) -> str:
    """The ``parameters`` text of image ``index`` of the job."""
    extra: dict[str, object] = {}
    if plan.distilled_cfg_scale is not None and checkpoint.is_flux:
        extra["Distilled CFG Scale"] = plan.distilled_cfg_scale
    if plan.hires_steps:
        if plan.params.get("hr_resize_x") or plan.params.get("hr_resize_y"):
            extra["Hires resize"] = f"{plan.params.get('hr_resize_x')}x{plan.params.get('hr_resize_y')}"
        else:
            extra["Hires upscale"] = plan.params.get("hr_scale")
        extra["Hires steps"] = plan.hires_steps
        extra["Hires upscaler"] = plan.hires_upscaler or "Latent"
    denoise = plan.denoising_strength if plan.kind == "img2img" or plan.hires_steps else None
    return images.infotext_for(
        plan.prompt,
        negative_prompt=plan.negative_prompt,
        steps=plan.steps,
        sampler=plan.sampler,
        scheduler=plan.scheduler,
        cfg_scale=plan.cfg_scale,
        seed=plan.all_seeds[index],
        width=plan.width,
        height=plan.height,
        model_hash=checkpoint.hash,
        model_name=checkpoint.model_name,
        version=version,
        subseed=plan.all_subseeds[index],
        subseed_strength=plan.subseed_strength,
        denoising_strength=denoise,
        extra=extra,
    )


def render_one(plan: JobPlan, checkpoint: Checkpoint, version: str, index: int) -> tuple[str, str]:
    """Draw and encode image ``index``: (bare base64 PNG, its infotext). CPU-bound."""
    w, h = plan.out_size
    img = images.render_image(
        plan.prompt,
        plan.all_seeds[index],
        w,
        h,
        black=plan.is_black(checkpoint),
        subseed=plan.all_subseeds[index],
        subseed_strength=plan.subseed_strength,
    )
    if plan.init_images and not plan.is_black(checkpoint):
        source = plan.init_images[index % len(plan.init_images)].convert("RGB").resize((w, h))
        strength = plan.denoising_strength if plan.denoising_strength is not None else 0.75
        img = Image.blend(source, img, min(max(strength, 0.0), 1.0))
    text = infotext(plan, checkpoint, version, index)
    return images.b64(images.encode_png(img, text)), text


def render_batch(plan: JobPlan, checkpoint: Checkpoint, version: str, batch_no: int) -> list[tuple[str, str]]:
    """All images of batch ``batch_no`` (one n_iter iteration)."""
    first = batch_no * plan.batch_size
    return [render_one(plan, checkpoint, version, i) for i in range(first, first + plan.batch_size)]


def info_json(plan: JobPlan, checkpoint: Checkpoint, version: str, infotexts: list[str], job_timestamp: str) -> str:
    """``Processed.js()``: the ``info`` JSON string of the response."""
    count = plan.image_count
    extra: dict[str, Any] = {}
    if plan.scheduler != "Automatic":
        extra["Schedule type"] = plan.scheduler
    return json.dumps(
        {
            "prompt": plan.prompt,
            "all_prompts": [plan.prompt] * count,
            "negative_prompt": plan.negative_prompt,
            "all_negative_prompts": [plan.negative_prompt] * count,
            "seed": plan.seed,
            "all_seeds": plan.all_seeds,
            "subseed": plan.subseed,
            "all_subseeds": plan.all_subseeds,
            "subseed_strength": plan.subseed_strength,
            "width": plan.width,
            "height": plan.height,
            "sampler_name": plan.sampler,
            "cfg_scale": plan.cfg_scale,
            "steps": plan.steps,
            "batch_size": plan.batch_size,
            "restore_faces": False,
            "face_restoration_model": None,
            "sd_model_name": checkpoint.model_name,
            "sd_model_hash": checkpoint.hash,
            "sd_vae_name": None,
            "sd_vae_hash": None,
            "seed_resize_from_w": plan.params["seed_resize_from_w"],
            "seed_resize_from_h": plan.params["seed_resize_from_h"],
            "denoising_strength": plan.denoising_strength,
            "extra_generation_params": extra,
            "index_of_first_image": 0,
            "infotexts": infotexts,
            "styles": plan.params.get("styles") or [],
            "job_timestamp": job_timestamp,
            "clip_skip": 1,
            "is_using_inpainting_conditioning": False,
            "version": version,
        }
    )


def echo_parameters(plan: JobPlan) -> dict[str, Any]:
    """The request model as echoed in ``parameters`` (img2img drops its inputs unless asked)."""
    params = dict(plan.params)
    if plan.kind == "img2img" and not params.get("include_init_images"):
        params["init_images"] = None
        params["mask"] = None
    return params


def decode_init_images(flavour: Flavour, encoded: list[str]) -> list[Image.Image]:
    """``decode_base64_to_image`` for each input; 500 for URLs and undecodable data."""
    return [decode_input_image(flavour, text) for text in encoded]


def decode_input_image(flavour: Flavour, text: str) -> Image.Image:
    """One API input image: base64 or a data URI; http(s) URLs are refused."""
    if text.startswith(("http://", "https://")):
        raise http_exception(flavour, 500, "Requests not allowed")
    try:
        return images.decode_b64_image(text)
    except ValueError:
        raise http_exception(flavour, 500, "Invalid encoded image") from None


def unknown_checkpoint(flavour: Flavour, name: object) -> ApiError:
    """``RuntimeError("model 'x' not found")`` from ``set_config``."""
    return server_exception(flavour, "RuntimeError", f"model {name!r} not found")
