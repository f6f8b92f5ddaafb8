"""The AI Horde's payload validation for POST /v2/generate/async.

The real server validates the body against its flask-restx model (`GenerationInputStable`,
`horde/apis/models/stable_v2.py`) before any of its own checks run, and answers
400 `{"errors": {"params.n": "21 is greater than the maximum of 20"}, "message": "Input payload validation failed"}`
with jsonschema's messages and no `rc`. This module checks the same fields with the same words.
"""

from __future__ import annotations

from typing import Any

KNOWN_SAMPLERS = [
    "k_lms", "k_heun", "k_euler", "k_euler_a", "k_dpm_2", "k_dpm_2_a", "k_dpm_fast", "k_dpm_adaptive",
    "k_dpmpp_2s_a", "k_dpmpp_2m", "dpmsolver", "k_dpmpp_sde", "DDIM", "lcm",
]  # fmt: skip
SOURCE_PROCESSING = ["img2img", "inpainting", "outpainting", "remix"]
VALIDATION_FAILED = "Input payload validation failed"

# field -> (json type, minimum, maximum, multiple of)
_PARAMS: dict[str, tuple[str, float | None, float | None, int | None]] = {
    "steps": ("integer", 1, 500, None),
    "n": ("integer", 1, 20, None),
    "width": ("integer", 64, 3072, 64),
    "height": ("integer", 64, 3072, 64),
    "cfg_scale": ("number", 0, 100, None),
    "denoising_strength": ("number", 0.01, 1.0, None),
    "clip_skip": ("integer", 1, 12, None),
    "seed": ("string", None, None, None),
    "karras": ("boolean", None, None, None),
    "hires_fix": ("boolean", None, None, None),
}
_TOP: dict[str, str] = {"nsfw": "boolean", "censor_nsfw": "boolean", "r2": "boolean", "shared": "boolean",
                        "trusted_workers": "boolean", "slow_workers": "boolean", "dry_run": "boolean",
                        "allow_downgrade": "boolean", "source_image": "string"}  # fmt: skip


def _is(value: Any, kind: str) -> bool:
    if kind == "integer":
        return isinstance(value, int) and not isinstance(value, bool)
    if kind == "number":
        return isinstance(value, int | float) and not isinstance(value, bool)
    if kind == "string":
        return isinstance(value, str)
    if kind == "boolean":
        return isinstance(value, bool)
    if kind == "array":
        return isinstance(value, list)
    return isinstance(value, dict)


def _type_error(value: Any, kind: str) -> str:
    return f"{value!r} is not of type {kind!r}"


def _check_param(name: str, value: Any, errors: dict[str, str]) -> None:
    kind, low, high, step = _PARAMS[name]
    key = f"params.{name}"
    if not _is(value, kind):
        errors[key] = _type_error(value, kind)
    elif low is not None and value < low:
        errors[key] = f"{value!r} is less than the minimum of {low!r}"
    elif high is not None and value > high:
        errors[key] = f"{value!r} is greater than the maximum of {high!r}"
    elif step is not None and value % step:
        errors[key] = f"{value!r} is not a multiple of {step!r}"


def validation_errors(body: Any) -> dict[str, str]:
    """The `errors` map the real server would answer with; empty when the body passes its schema."""
    if not isinstance(body, dict):
        return {"": _type_error(body, "object")}
    errors: dict[str, str] = {}
    prompt = body.get("prompt")
    if "prompt" not in body:
        errors["prompt"] = "'prompt' is a required property"
    elif not isinstance(prompt, str):
        errors["prompt"] = _type_error(prompt, "string")
    elif not prompt:
        errors["prompt"] = "'' should be non-empty"
    params = body.get("params", {})
    if not isinstance(params, dict):
        errors["params"] = _type_error(params, "object")
        params = {}
    for name, value in params.items():
        if name in _PARAMS:
            _check_param(name, value, errors)
    sampler = params.get("sampler_name", "k_euler_a")
    if sampler not in KNOWN_SAMPLERS:
        errors["params.sampler_name"] = f"{sampler!r} is not one of {KNOWN_SAMPLERS!r}"
    models = body.get("models", [])
    if not _is(models, "array"):
        errors["models"] = _type_error(models, "array")
    else:
        for index, model in enumerate(models):
            if not isinstance(model, str):
                errors[f"models.{index}"] = _type_error(model, "string")
    for name, kind in _TOP.items():
        if name in body and body[name] is not None and not _is(body[name], kind):
            errors[name] = _type_error(body[name], kind)
    processing = body.get("source_processing", "img2img")
    if processing not in SOURCE_PROCESSING:
        errors["source_processing"] = f"{processing!r} is not one of {SOURCE_PROCESSING!r}"
    return errors
