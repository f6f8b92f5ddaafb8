"""Request models of the simulated ``/sdapi/v1`` endpoints: field kinds and defaults.

The defaults are the processing classes' (``modules/processing.py``), not the UI's: 50 steps,
sampler via ``sampler_index`` "Euler", cfg 7, 512x512, seeds -1 (backends.md §1.2).
"""

from __future__ import annotations

import logging
from typing import Any

from simulators.a1111_catalog import Flavour
from simulators.a1111_wire import FieldKind

log = logging.getLogger(__name__)

Fields = dict[str, tuple[FieldKind, Any]]

_COMMON: Fields = {
    "prompt": ("str", ""),
    "negative_prompt": ("str", ""),
    "styles": ("strlist", None),
    "seed": ("int", -1),
    "subseed": ("int", -1),
    "subseed_strength": ("float", 0.0),
    "seed_resize_from_h": ("int", -1),
    "seed_resize_from_w": ("int", -1),
    "sampler_name": ("str", None),
    "scheduler": ("str", None),
    "batch_size": ("int", 1),
    "n_iter": ("int", 1),
    "steps": ("int", 50),
    "cfg_scale": ("float", 7.0),
    "width": ("int", 512),
    "height": ("int", 512),
    "restore_faces": ("bool", None),
    "tiling": ("bool", None),
    "do_not_save_samples": ("bool", False),
    "do_not_save_grid": ("bool", False),
    "eta": ("float", None),
    "denoising_strength": ("float", None),
    "s_min_uncond": ("float", None),
    "s_churn": ("float", None),
    "s_tmax": ("float", None),
    "s_tmin": ("float", None),
    "s_noise": ("float", None),
    "override_settings": ("dict", None),
    "override_settings_restore_afterwards": ("bool", True),
    "refiner_checkpoint": ("str", None),
    "refiner_switch_at": ("float", None),
    "disable_extra_networks": ("bool", False),
    "firstpass_image": ("str", None),
    "comments": ("dict", None),
}

_TXT2IMG: Fields = {
    "enable_hr": ("bool", False),
    "firstphase_width": ("int", 0),
    "firstphase_height": ("int", 0),
    "hr_scale": ("float", 2.0),
    "hr_upscaler": ("str", None),
    "hr_second_pass_steps": ("int", 0),
    "hr_resize_x": ("int", 0),
    "hr_resize_y": ("int", 0),
    "hr_checkpoint_name": ("str", None),
    "hr_sampler_name": ("str", None),
    "hr_scheduler": ("str", None),
    "hr_prompt": ("str", ""),
    "hr_negative_prompt": ("str", ""),
}

_IMG2IMG: Fields = {
    "init_images": ("strlist", None),
    "resize_mode": ("int", 0),
    "image_cfg_scale": ("float", None),
    "mask": ("str", None),
    "mask_blur_x": ("int", 4),
    "mask_blur_y": ("int", 4),
    "mask_blur": ("int", None),
    "mask_round": ("bool", True),
    "inpainting_fill": ("int", 0),
    "inpaint_full_res": ("bool", True),
    "inpaint_full_res_padding": ("int", 0),
    "inpainting_mask_invert": ("int", 0),
    "initial_noise_multiplier": ("float", None),
    "latent_mask": ("str", None),
    "include_init_images": ("bool", False),
}

_API_EXTRAS: Fields = {
    "force_task_id": ("str", None),
    "sampler_index": ("str", "Euler"),
    "script_name": ("str", None),
    "script_args": ("list", []),
    "send_images": ("bool", True),
    "save_images": ("bool", False),
    "alwayson_scripts": ("dict", {}),
    "infotext": ("str", None),
}

_FORGE_COMMON: Fields = {"distilled_cfg_scale": ("float", 3.5)}
_FORGE_TXT2IMG: Fields = {
    "hr_cfg": ("float", 1.0),
    "hr_distilled_cfg": ("float", 3.5),
    "hr_additional_modules": ("list", []),
}


def txt2img_fields(flavour: Flavour) -> Fields:
    """Fields of ``StableDiffusionTxt2ImgProcessingAPI`` for the flavour."""
    fields = {**_COMMON, **_TXT2IMG}
    if flavour == "forge":
        fields.update({**_FORGE_COMMON, **_FORGE_TXT2IMG})
    return {**fields, **_API_EXTRAS}


def img2img_fields(flavour: Flavour) -> Fields:
    """Fields of ``StableDiffusionImg2ImgProcessingAPI`` for the flavour."""
    fields = {**_COMMON, **_IMG2IMG, "denoising_strength": ("float", 0.75)}
    if flavour == "forge":
        fields.update(_FORGE_COMMON)
    return {**fields, **_API_EXTRAS}


EXTRAS_FIELDS: Fields = {
    "resize_mode": ("int", 0),
    "show_extras_results": ("bool", True),
    "gfpgan_visibility": ("float", 0.0),
    "codeformer_visibility": ("float", 0.0),
    "codeformer_weight": ("float", 0.0),
    "upscaling_resize": ("float", 2.0),
    "upscaling_resize_w": ("int", 512),
    "upscaling_resize_h": ("int", 512),
    "upscaling_crop": ("bool", True),
    "upscaler_1": ("str", "None"),
    "upscaler_2": ("str", "None"),
    "extras_upscaler_2_visibility": ("float", 0.0),
    "upscale_first": ("bool", False),
    "image": ("str", ""),
}

PNG_INFO_FIELDS: Fields = {"image": ("str", "")}
