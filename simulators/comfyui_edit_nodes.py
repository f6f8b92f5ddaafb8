"""The node classes of ComfyUI's edit-by-instruction workflows (Flux Kontext, Qwen-Image-Edit), as v0.3.64 has them.

Schemas from `nodes.py` (UNETLoader, CLIPLoader, DualCLIPLoader, VAELoader, ConditioningZeroOut),
`comfy_extras/nodes_flux.py` (FluxKontextImageScale, PREFERED_KONTEXT_RESOLUTIONS), `nodes_edit_model.py`
(ReferenceLatent: `latent` optional), `nodes_qwen.py` (TextEncodeQwenImageEdit: `vae`/`image` optional;
...Plus: `vae`, `image1`..`image3` optional), `nodes_model_advanced.py` (ModelSamplingAuraFlow) and
`nodes_cfg.py` (CFGNorm). V3 nodes (`comfy_api.latest.io`) list an input as `(TYPE, {options})` and put
optional inputs under "optional" (`add_to_dict_v1`).

The simulated functions keep what matters to the result: a conditioning carries its text and its reference
images, so the sampler's image depends on the references' pixels, the prompt and the seed.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from PIL import Image, ImageOps

# folder_paths.get_filename_list of the model folders these loaders read
MODEL_FILES: dict[str, list[str]] = {
    "DIFFUSION_MODELS": ["flux1-dev-kontext_fp8_scaled.safetensors", "qwen_image_edit_2509_fp8_e4m3fn.safetensors"],
    "TEXT_ENCODERS": [
        "clip_l.safetensors",
        "t5xxl_fp8_e4m3fn_scaled.safetensors",
        "qwen_2.5_vl_7b_fp8_scaled.safetensors",
    ],
    "VAES": ["ae.safetensors", "qwen_image_vae.safetensors"],
}
CLIP_TYPES = [
    "stable_diffusion", "stable_cascade", "sd3", "stable_audio", "mochi", "ltxv", "pixart", "cosmos", "lumina2",
    "wan", "hidream", "chroma", "ace", "omnigen2", "qwen_image", "hunyuan_image",
]  # fmt: skip
DUAL_CLIP_TYPES = ["sdxl", "sd3", "flux", "hunyuan_video", "hidream", "hunyuan_image"]
KONTEXT_RESOLUTIONS = [
    (672, 1568), (688, 1504), (720, 1456), (752, 1392), (800, 1328), (832, 1248), (880, 1184), (944, 1104),
    (1024, 1024), (1104, 944), (1184, 880), (1248, 832), (1328, 800), (1392, 752), (1456, 720), (1504, 688),
    (1568, 672),
]  # fmt: skip
_DEVICE = (["default", "cpu"], {"advanced": True})
_PROMPT = ("STRING", {"multiline": True, "dynamicPrompts": True})
_SHIFT = {"min": 0.0, "max": 100.0, "step": 0.01}

# class -> (required, optional, RETURN_TYPES, CATEGORY, python_module)
EDIT_CLASSES: dict[str, tuple[dict[str, Any], dict[str, Any], tuple[str, ...], str, str]] = {
    "UNETLoader": (
        {"unet_name": "DIFFUSION_MODELS", "weight_dtype": (["default", "fp8_e4m3fn", "fp8_e4m3fn_fast", "fp8_e5m2"],)},
        {},
        ("MODEL",),
        "advanced/loaders",
        "nodes",
    ),
    "CLIPLoader": (
        {"clip_name": "TEXT_ENCODERS", "type": (CLIP_TYPES,)},
        {"device": _DEVICE},
        ("CLIP",),
        "advanced/loaders",
        "nodes",
    ),
    "DualCLIPLoader": (
        {"clip_name1": "TEXT_ENCODERS", "clip_name2": "TEXT_ENCODERS", "type": (DUAL_CLIP_TYPES,)},
        {"device": _DEVICE},
        ("CLIP",),
        "advanced/loaders",
        "nodes",
    ),
    "VAELoader": ({"vae_name": "VAES"}, {}, ("VAE",), "loaders", "nodes"),
    "ConditioningZeroOut": (
        {"conditioning": ("CONDITIONING",)},
        {},
        ("CONDITIONING",),
        "advanced/conditioning",
        "nodes",
    ),
    "FluxKontextImageScale": (
        {"image": ("IMAGE", {})},
        {},
        ("IMAGE",),
        "advanced/conditioning/flux",
        "comfy_extras.nodes_flux",
    ),
    "ReferenceLatent": (
        {"conditioning": ("CONDITIONING", {})},
        {"latent": ("LATENT", {})},
        ("CONDITIONING",),
        "advanced/conditioning/edit_models",
        "comfy_extras.nodes_edit_model",
    ),
    "TextEncodeQwenImageEdit": (
        {"clip": ("CLIP", {}), "prompt": _PROMPT},
        {"vae": ("VAE", {}), "image": ("IMAGE", {})},
        ("CONDITIONING",),
        "advanced/conditioning",
        "comfy_extras.nodes_qwen",
    ),
    "TextEncodeQwenImageEditPlus": (
        {"clip": ("CLIP", {}), "prompt": _PROMPT},
        {"vae": ("VAE", {}), "image1": ("IMAGE", {}), "image2": ("IMAGE", {}), "image3": ("IMAGE", {})},
        ("CONDITIONING",),
        "advanced/conditioning",
        "comfy_extras.nodes_qwen",
    ),
    "ModelSamplingAuraFlow": (
        {"model": ("MODEL",), "shift": ("FLOAT", {"default": 1.73, **_SHIFT})},
        {},
        ("MODEL",),
        "advanced/model",
        "comfy_extras.nodes_model_advanced",
    ),
    "CFGNorm": (
        {"model": ("MODEL", {}), "strength": ("FLOAT", {"default": 1.0, **_SHIFT})},
        {},
        ("MODEL",),
        "advanced/guidance",
        "comfy_extras.nodes_cfg",
    ),
}


def kontext_scale(image: Image.Image) -> Image.Image:
    """FluxKontextImageScale: the preferred resolution nearest in aspect ratio, lanczos, center crop."""
    ratio = image.width / image.height
    _, width, height = min((abs(ratio - w / h), w, h) for w, h in KONTEXT_RESOLUTIONS)
    return ImageOps.fit(image, (width, height), Image.Resampling.LANCZOS)


def run_edit_node(kind: str, get: Callable[[str], Any], given: Callable[[str], bool]) -> tuple[Any, ...]:
    """One edit node's outputs; `given(name)` says whether an optional input is connected."""
    if kind in ("UNETLoader", "VAELoader"):
        return (get("unet_name" if kind == "UNETLoader" else "vae_name"),)
    if kind in ("CLIPLoader", "DualCLIPLoader"):
        return ({"type": get("type")},)
    if kind == "ConditioningZeroOut":
        return ({"text": "", "references": []},)
    if kind == "FluxKontextImageScale":
        return ([kontext_scale(image) for image in get("image")],)
    if kind == "ReferenceLatent":
        conditioning = get("conditioning")
        added = get("latent")["images"] if given("latent") else []
        return ({**conditioning, "references": [*conditioning.get("references", []), *added]},)
    if kind in ("TextEncodeQwenImageEdit", "TextEncodeQwenImageEditPlus"):
        names = ["image"] if kind == "TextEncodeQwenImageEdit" else ["image1", "image2", "image3"]
        references = [get(name)[0] for name in names if given(name)]
        return ({"text": str(get("prompt")), "references": references},)
    if kind in ("ModelSamplingAuraFlow", "CFGNorm"):
        return (get("model"),)
    raise KeyError(kind)
