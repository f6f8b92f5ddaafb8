"""What the simulated A1111/Forge server knows: checkpoints, samplers, schedulers, upscalers.

Shapes follow the ``/sdapi/v1`` list endpoints (shared/reference/backends.md §1.1, §2).
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from typing import Any, Literal

log = logging.getLogger(__name__)

Flavour = Literal["a1111", "forge"]

DEFAULT_CHECKPOINTS: tuple[str, ...] = (
    "v1-5-pruned-emaonly.safetensors [6ce0161689]",
    "sd_xl_base_1.0.safetensors [31e35c80fc]",
    "flux1-dev-bnb-nf4-v2.safetensors [f0770152c8]",
)

VERSIONS: dict[Flavour, str] = {"a1111": "v1.10.1", "forge": "f2.0.1v1.10.1-previous-669-gdfdcbab6"}

_MODELS_DIR = "/stable-diffusion-webui/models/Stable-diffusion"


@dataclass(frozen=True)
class Checkpoint:
    """One checkpoint file, named the way ``/sd-models`` names it."""

    title: str
    filename: str
    model_name: str
    hash: str

    @classmethod
    def from_title(cls, title: str) -> Checkpoint:
        """Parse ``"name.safetensors [hash]"``; a bare file name gets a hash made from its name."""
        name, _, rest = title.partition(" [")
        short = rest.rstrip("]") if rest else hashlib.sha256(name.encode()).hexdigest()[:10]
        stem = name.rsplit(".", 1)[0] if "." in name else name
        return cls(title=f"{name} [{short}]", filename=name, model_name=stem, hash=short)

    @property
    def is_flux(self) -> bool:
        """Flux models need the Simple scheduler and cfg 1, or they come out black."""
        return "flux" in self.title.lower()

    @property
    def sha256(self) -> str:
        # The short hash is the first 10 hex digits of the full one.
        return self.hash + hashlib.sha256(self.filename.encode()).hexdigest()[len(self.hash) :]

    def aliases(self) -> tuple[str, ...]:
        """Every name ``sd_model_checkpoint`` accepts for this model (``checkpoint_aliases``)."""
        return (self.title, self.filename, self.model_name, self.hash, self.sha256, f"{self.model_name} [{self.hash}]")

    def as_json(self) -> dict[str, Any]:
        return {
            "title": self.title,
            "model_name": self.model_name,
            "hash": self.hash,
            "sha256": self.sha256,
            "filename": f"{_MODELS_DIR}/{self.filename}",
            "config": None,
        }


class CheckpointCatalog:
    """The known checkpoints and their aliases."""

    def __init__(self, titles: list[str] | tuple[str, ...]) -> None:
        self.checkpoints = [Checkpoint.from_title(t) for t in titles]
        if not self.checkpoints:
            raise ValueError("at least one checkpoint is needed")
        self._aliases: dict[str, Checkpoint] = {}
        for ckpt in self.checkpoints:
            for alias in ckpt.aliases():
                self._aliases.setdefault(alias, ckpt)

    def find(self, name: object) -> Checkpoint | None:
        """The checkpoint an alias names, or None."""
        return self._aliases.get(name) if isinstance(name, str) else None


@dataclass(frozen=True)
class Sampler:
    name: str
    aliases: tuple[str, ...]
    options: dict[str, Any]

    def as_json(self) -> dict[str, Any]:
        return {"name": self.name, "aliases": list(self.aliases), "options": self.options}


SAMPLERS: tuple[Sampler, ...] = (
    Sampler("DPM++ 2M", ("k_dpmpp_2m",), {"scheduler": "karras"}),
    Sampler("DPM++ SDE", ("k_dpmpp_sde",), {"scheduler": "karras", "second_order": True, "brownian_noise": True}),
    Sampler("DPM++ 2M SDE", ("k_dpmpp_2m_sde_ka",), {"scheduler": "exponential", "brownian_noise": True}),
    Sampler("DPM++ 2S a", ("k_dpmpp_2s_a",), {"uses_ensd": True, "second_order": True}),
    Sampler("Euler a", ("k_euler_a", "k_euler_ancestral"), {"uses_ensd": True}),
    Sampler("Euler", ("k_euler",), {}),
    Sampler("LMS", ("k_lms",), {}),
    Sampler("Heun", ("k_heun",), {"second_order": True}),
    Sampler("DPM2", ("k_dpm_2",), {"discard_next_to_last_sigma": True, "second_order": True}),
    Sampler("DDIM", ("ddim",), {}),
    Sampler("UniPC", ("unipc",), {}),
    Sampler("LCM", ("k_lcm",), {}),
)
_SAMPLERS_BY_NAME = {s.name: s for s in SAMPLERS}


@dataclass(frozen=True)
class Scheduler:
    name: str
    label: str
    aliases: tuple[str, ...] | None = None
    default_rho: float = -1.0
    need_inner_model: bool = False

    def as_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "label": self.label,
            "aliases": list(self.aliases) if self.aliases else None,
            "default_rho": self.default_rho,
            "need_inner_model": self.need_inner_model,
        }


SCHEDULERS: tuple[Scheduler, ...] = (
    Scheduler("automatic", "Automatic"),
    Scheduler("uniform", "Uniform", need_inner_model=True),
    Scheduler("karras", "Karras", default_rho=7.0),
    Scheduler("exponential", "Exponential"),
    Scheduler("polyexponential", "Polyexponential", default_rho=1.0),
    Scheduler("sgm_uniform", "SGM Uniform", aliases=("SGMUniform",), need_inner_model=True),
    Scheduler("kl_optimal", "KL Optimal"),
    Scheduler("align_your_steps", "Align Your Steps"),
    Scheduler("simple", "Simple"),
    Scheduler("normal", "Normal"),
    Scheduler("ddim", "DDIM"),
    Scheduler("beta", "Beta"),
)
_SCHEDULERS_BY_KEY = {**{s.name: s for s in SCHEDULERS}, **{s.label: s for s in SCHEDULERS}}


def resolve_sampler(sampler_name: str | None, scheduler_name: str | None) -> tuple[str, str]:
    """``sd_samplers.get_sampler_and_scheduler``: (sampler name, scheduler label).

    A legacy combined name ("DPM++ 2M Karras") is split; an unknown sampler silently becomes
    DPM++ 2M and an unknown scheduler Automatic; a scheduler equal to the sampler's own
    default is reported as Automatic.
    """
    found = _SCHEDULERS_BY_KEY.get(scheduler_name or "", SCHEDULERS[0])
    name = sampler_name or SAMPLERS[0].name
    for sched in SCHEDULERS:
        matched = False
        for option in (sched.label, sched.name, *(sched.aliases or ())):
            if name.endswith(" " + option):
                found = sched
                name = name[: -(len(option) + 1)]
                matched = True
                break
        if matched:
            break
    sampler = _SAMPLERS_BY_NAME.get(name, SAMPLERS[0])
    if sampler.options.get("scheduler") == found.name:
        found = SCHEDULERS[0]
    return sampler.name, found.label


@dataclass(frozen=True)
class Upscaler:
    name: str
    scale: float = 4.0
    model_name: str | None = None

    def as_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "model_name": self.model_name,
            "model_path": None if self.model_name is None else f"/models/{self.model_name}.pth",
            "model_url": None,
            "scale": self.scale,
        }


UPSCALERS: tuple[Upscaler, ...] = (
    Upscaler("None"),
    Upscaler("Lanczos"),
    Upscaler("Nearest"),
    Upscaler("DAT x2", 2.0, "DAT x2"),
    Upscaler("DAT x4", 4.0, "DAT x4"),
    Upscaler("ESRGAN_4x", 4.0, "ESRGAN_4x"),
    Upscaler("LDSR", 4.0, "model"),
    Upscaler("R-ESRGAN 4x+", 4.0, "RealESRGAN_x4plus"),
    Upscaler("R-ESRGAN 4x+ Anime6B", 4.0, "RealESRGAN_x4plus_anime_6B"),
    Upscaler("ScuNET GAN", 4.0, "ScuNET"),
    Upscaler("SwinIR 4x", 4.0, "SwinIR_4x"),
)
UPSCALER_NAMES = frozenset(u.name for u in UPSCALERS)
LATENT_UPSCALE_MODES: tuple[str, ...] = (
    "Latent",
    "Latent (antialiased)",
    "Latent (bicubic)",
    "Latent (bicubic antialiased)",
    "Latent (nearest)",
    "Latent (nearest-exact)",
)

FORGE_MODULES: tuple[str, ...] = ("ae.safetensors", "clip_l.safetensors", "t5xxl_fp16.safetensors")
A1111_VAES: tuple[str, ...] = ("vae-ft-mse-840000-ema-pruned.safetensors", "sdxl_vae.safetensors")


def sd_modules_json(modules: list[str]) -> list[dict[str, Any]]:
    """Forge's GET /sd-modules: VAEs and text encoders by file name and path."""
    return [{"model_name": m, "filename": f"/stable-diffusion-webui/models/{_module_folder(m)}/{m}"} for m in modules]


def _module_folder(name: str) -> str:
    return "VAE" if name == "ae.safetensors" or "vae" in name.lower() else "text_encoder"


def sd_vae_json(vaes: list[str]) -> list[dict[str, Any]]:
    return [{"model_name": v, "filename": f"/stable-diffusion-webui/models/VAE/{v}"} for v in vaes]


def loras_json(loras: list[str]) -> list[dict[str, Any]]:
    """GET /loras (the built-in Lora extension): name and alias are the file's stem."""
    items = []
    for file in loras:
        stem = file.rsplit(".", 1)[0]
        path = f"/stable-diffusion-webui/models/Lora/{file}"
        items.append({"name": stem, "alias": stem, "path": path, "metadata": {}})
    return items


# Built-in script titles (lower-cased) per flavour; anything else in alwayson_scripts is a 422.
ALWAYSON_SCRIPTS: dict[Flavour, frozenset[str]] = {
    "a1111": frozenset({"extra options", "hypertile", "refiner", "sampler", "seed", "soft inpainting"}),
    "forge": frozenset({"extra options", "hypertile", "refiner", "sampler", "seed", "soft inpainting", "controlnet"}),
}
SELECTABLE_SCRIPTS: frozenset[str] = frozenset(
    {"prompt matrix", "prompts from file or textbox", "x/y/z plot", "loopback", "outpainting mk2", "sd upscale"}
)


def default_options(flavour: Flavour, checkpoint: Checkpoint, preview_every: int, previews: bool) -> dict[str, Any]:
    """The GET ``/options`` dict a fresh install answers with (a representative subset)."""
    opts: dict[str, Any] = {
        "samples_save": True,
        "samples_format": "png",
        "samples_filename_pattern": "",
        "save_images_add_number": True,
        "grid_save": True,
        "return_grid": True,
        "enable_pnginfo": True,
        "jpeg_quality": 80,
        "sd_model_checkpoint": checkpoint.title,
        "sd_checkpoint_hash": checkpoint.sha256,
        "sd_vae": "Automatic",
        "CLIP_stop_at_last_layers": 1,
        "live_previews_enable": previews,
        "live_previews_image_format": "png",
        "show_progress_every_n_steps": preview_every,
        "show_progress_type": "Approx NN",
        "api_enable_requests": False,
        "api_forbid_local_requests": True,
        "eta_noise_seed_delta": 0,
        "upscaler_for_img2img": None,
    }
    if flavour == "forge":
        opts.update(
            {
                "forge_preset": "sd",
                "forge_additional_modules": [],
                "forge_unet_storage_dtype": "Automatic",
                "forge_inference_memory": 1024,
                "forge_async_loading": "Queue",
                "forge_pin_shared_memory": "CPU",
            }
        )
    return opts
