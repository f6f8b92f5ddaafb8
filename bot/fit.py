"""Whether one backend can run a preset as written, and if not, why.

Routing (bot/engine.py), the refusals at `/imagine` and on buttons, and `imagebridge check` all ask
the same question here, so a preset is never accepted where no backend can run it and never sent
to a backend that would silently run something else (A1111 and Forge keep the loaded checkpoint
when the asked one is missing; an unknown sampler becomes DPM++ 2M).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from bot.i18n import t
from bot.models import GenerationRequest, JobKind
from bot.ports import Capabilities, Inventory
from bot.presets import LORA_TAG, Preset

A1111_FAMILY = frozenset({"a1111", "forge", "sdnext"})
_HASH = re.compile(r"\s*\[[0-9a-fA-F]+\]$")
MODEL_EXTENSIONS = (".safetensors", ".ckpt", ".pt", ".pth", ".bin", ".gguf", ".sft")
# A1111's shared.latent_upscale_modes: hires upscalers that need no model (/upscalers does not list them)
LATENT_UPSCALERS = frozenset(
    m.lower()
    for m in (
        "Latent",
        "Latent (antialiased)",
        "Latent (bicubic)",
        "Latent (bicubic antialiased)",
        "Latent (nearest)",
        "Latent (nearest-exact)",
    )
)


@dataclass(frozen=True)
class Need:
    """What one job asks of a backend: the preset as written, the kind of job, how many images."""

    preset: Preset
    kind: JobKind = "txt2img"
    count: int = 1
    variation: bool = False
    loras: frozenset[str] = frozenset()
    references: int = 0  # an edit's reference images

    @property
    def key(self) -> tuple[str, str, int, bool, frozenset[str], int]:
        """Hashable identity (presets hold dicts), for caching answers per backend."""
        return (self.preset.name, self.kind, self.count, self.variation, self.loras, self.references)

    @classmethod
    def typical(cls, preset: Preset) -> Need:
        """What a preset is for: an edit with as many references as it takes, or one txt2img image."""
        if preset.max_references > 0:
            return cls(preset, "edit", references=preset.max_references)
        return cls(preset)

    @classmethod
    def of(cls, preset: Preset, request: GenerationRequest) -> Need:
        return cls(
            preset=preset,
            kind=request.kind,
            count=request.count,
            variation=request.subseed is not None and request.subseed_strength > 0,
            loras=lora_names(request.prompt) if request.kind not in ("upscale", "edit") else frozenset(),
            references=len(request.reference_image_ids),
        )


@dataclass(frozen=True)
class Unfit:
    """Why a backend cannot run a need: a catalog key under `fit.` and its values."""

    key: str
    params: dict[str, object] = field(default_factory=dict)

    def text(self, lang: str | None = "en") -> str:
        return t(lang, f"fit.{self.key}", **self.params)


@dataclass(frozen=True)
class BackendView:
    """One backend as routing sees it: name, kind, what it can do and (once it answered) what it has."""

    name: str
    kind: str
    capabilities: Capabilities
    inventory: Inventory | None = None


def lora_names(prompt: str) -> frozenset[str]:
    return frozenset(match.group(1).lower() for match in LORA_TAG.finditer(prompt))


def file_key(name: str) -> str:
    """'SDXL/sd_xl_base_1.0.safetensors [31e35c80fc]' -> 'sd_xl_base_1.0.safetensors' (lower case)."""
    bare = _HASH.sub("", name).strip().replace("\\", "/")
    return bare.rsplit("/", 1)[-1].lower()


def _stem(name: str) -> str:
    key = file_key(name)
    return key.rsplit(".", 1)[0] if key.endswith(MODEL_EXTENSIONS) else key


def has_file(wanted: str, available: frozenset[str]) -> bool:
    """A checkpoint or module by file name (any folder, with or without the hash); a bare stem matches any extension."""
    if file_key(wanted).endswith(MODEL_EXTENSIONS):
        return file_key(wanted) in {file_key(name) for name in available}
    return _stem(wanted) in {_stem(name) for name in available}


def forge_features(preset: Preset) -> list[str]:
    """What in a preset only Forge understands (the other WebUIs ignore it and the image comes out wrong)."""
    features = ["distilled_cfg_scale"] if preset.distilled_cfg_scale is not None else []
    features += sorted(key for key in preset.override_settings if key.startswith("forge_"))
    return features


def serves(preset: Preset, name: str, kind: str) -> Unfit | None:
    """The preset's `backend` value against a backend's name and kind, kind-specific features included."""
    wanted = preset.backend
    if wanted != name and wanted != kind and not (wanted == "a1111" and kind in A1111_FAMILY):
        return Unfit("kind", {"wanted": wanted, "kind": kind})
    if kind in A1111_FAMILY:
        features = forge_features(preset)
        if features and kind != "forge":
            return Unfit("forge_only", {"features": ", ".join(features), "kind": kind})
        if kind == "sdnext" and preset.scheduler and preset.scheduler.lower() != "automatic":
            return Unfit("sdnext_scheduler", {"scheduler": preset.scheduler})
    return None


def _can_do(need: Need, capabilities: Capabilities, inventory: Inventory | None) -> Unfit | None:
    if need.kind == "img2img" and not capabilities.img2img:
        return Unfit("no_img2img")
    if need.kind == "upscale" and not capabilities.upscale:
        return Unfit("no_upscale")
    if need.kind == "edit" and not capabilities.edits:
        return Unfit("no_edits")
    if need.kind == "edit" and need.references > capabilities.max_references:
        return Unfit("too_many_references", {"count": need.references, "most": capabilities.max_references})
    if need.variation and not capabilities.variations:
        return Unfit("no_variations")
    if hires_upscaler(need) is not None and not capabilities.hires:
        return Unfit("no_hires")
    lacking = dict(inventory.lacks) if inventory is not None else {}
    for what in (need.kind, "variations" if need.variation else ""):
        if what in lacking:
            return Unfit("lacks", {"what": what, "reason": lacking[what]})
    return None


def _has(need: Need, inventory: Inventory) -> Unfit | None:
    preset = need.preset
    if need.kind == "upscale":
        if inventory.upscalers is not None and preset.upscaler.lower() not in inventory.upscalers:
            return Unfit("no_upscaler", {"upscaler": preset.upscaler})
        return None
    if need.kind == "edit":  # an edit runs the backend's edit workflow or model; only its sampler comes from us
        return _sampling(preset, inventory)
    hires = hires_upscaler(need)
    if hires is not None and inventory.upscalers is not None and hires not in LATENT_UPSCALERS | inventory.upscalers:
        return Unfit("no_hires_upscaler", {"upscaler": preset.hires.upscaler if preset.hires else hires})
    if inventory.checkpoints is not None and not has_file(preset.checkpoint, inventory.checkpoints):
        return Unfit("no_checkpoint", {"checkpoint": preset.checkpoint})
    if sampling := _sampling(preset, inventory):
        return sampling
    if inventory.modules is not None:
        missing = [module for module in needed_modules(preset) if not has_file(module, inventory.modules)]
        if missing:
            return Unfit("no_modules", {"modules": ", ".join(missing)})
    if inventory.loras is not None:
        missing = sorted((need.loras | lora_names(preset.prompt_template)) - inventory.loras)
        if missing:
            return Unfit("no_loras", {"loras": ", ".join(missing)})
    return None


def _sampling(preset: Preset, inventory: Inventory) -> Unfit | None:
    if inventory.samplers is not None and not known_sampler(preset.sampler, inventory):
        return Unfit("no_sampler", {"sampler": preset.sampler})
    if inventory.schedulers is not None and preset.scheduler and preset.scheduler.lower() not in inventory.schedulers:
        return Unfit("no_scheduler", {"scheduler": preset.scheduler})
    return None


def hires_upscaler(need: Need) -> str | None:
    """The hires-fix upscaler a txt2img job of a preset with `hires` needs (lower case), else None."""
    hires = need.preset.hires
    return hires.upscaler.lower() if hires is not None and need.kind == "txt2img" else None


def known_sampler(sampler: str, inventory: Inventory) -> bool:
    """A listed sampler, or a legacy 'DPM++ 2M Karras' whose sampler and scheduler are both listed."""
    samplers = inventory.samplers or frozenset()
    name = sampler.lower()
    if name in samplers:
        return True
    base, _, last = name.rpartition(" ")
    return base in samplers and last in (inventory.schedulers or frozenset({"karras", "exponential"}))


def needed_modules(preset: Preset) -> list[str]:
    """VAE and text-encoder files the preset names (Forge's forge_additional_modules, A1111's sd_vae)."""
    modules = [str(item) for item in preset.override_settings.get("forge_additional_modules") or []]
    vae = preset.override_settings.get("sd_vae")
    if isinstance(vae, str) and vae.lower() not in ("automatic", "none", ""):
        modules.append(vae)
    return modules


def why_not(need: Need, backend: BackendView) -> Unfit | None:
    """None when the backend can run the need as written, else the first reason it cannot."""
    reason = serves(need.preset, backend.name, backend.kind) or _can_do(need, backend.capabilities, backend.inventory)
    if reason is None and backend.inventory is not None:
        reason = _has(need, backend.inventory)
    return reason
