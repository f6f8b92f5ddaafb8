"""SwarmUI's T2I parameter checks, as `T2IParamTypes.ValidateParam` and `ApplyParameter` word them, and the
backend status words of `BackendHandler.CurrentBackendStatus`.

Raw input keys are parameter ids (the display name lower-cased, letters only: `cfgscale`, `negativeprompt`,
`initimagecreativity`). Unknown keys are skipped with a server-side warning, never refused; a bad value is refused
with "Invalid value for parameter <Name>: <reason>". Dropdowns and models match loosely (`GetBestInList`): an exact
match after lower-casing and dropping spaces and brackets, else the shortest value containing the input.
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass
from typing import Any

SAMPLERS = ["euler", "euler_ancestral", "heun", "dpm_2", "dpm_2_ancestral", "lms", "dpm_fast", "dpm_adaptive",
            "dpmpp_2s_ancestral", "dpmpp_sde", "dpmpp_2m", "dpmpp_2m_sde", "dpmpp_3m_sde", "ddim", "ddpm", "lcm",
            "uni_pc", "uni_pc_bh2", "res_multistep", "ipndm", "deis"]  # fmt: skip
SCHEDULERS = ["normal", "karras", "exponential", "simple", "ddim_uniform", "sgm_uniform", "turbo",
              "align_your_steps", "beta", "linear_quadratic", "kl_optimal"]  # fmt: skip
LONG_MAX = 2**63 - 1
BASE64 = re.compile(r"^[A-Za-z0-9+/=]+$")
# BackendHandler.CurrentBackendStatus: status -> (class, message); only these can run a generation
BACKEND_STATUS = {
    "running": ("", ""),
    "some_loading": ("warn", "Some backends are ready, but others are still loading..."),
    "errored": ("error", "Some backends have errored on the server. Check the server logs for details."),
    "empty": ("error", "No backends present. You must configure backends in the Backends section of the Server tab "
              "before you can continue."),
    "all_disabled": ("error", "All backends are disabled. You must enable backends in the Backends section of the "
                     "Server tab before you can continue."),
    "idle": ("warn", "All backends are idle. Cannot generate until at least one backend is running."),
}  # fmt: skip
CAN_RUN = {"running", "some_loading", "errored"}


@dataclass(frozen=True)
class Param:
    name: str
    kind: str  # integer, decimal, boolean, text, dropdown, model, image
    low: float = 0
    high: float = 0
    values: tuple[str, ...] = ()


PARAMS = {
    "prompt": Param("Prompt", "text"),
    "negativeprompt": Param("Negative Prompt", "text"),
    "images": Param("Images", "integer", 1, 10000),
    "seed": Param("Seed", "integer", -1, LONG_MAX),
    "steps": Param("Steps", "integer", 0, 500),
    "cfgscale": Param("CFG Scale", "decimal", 0, 100),
    "width": Param("Width", "integer", 64, 16384),
    "height": Param("Height", "integer", 64, 16384),
    "model": Param("Model", "model"),
    "sampler": Param("Sampler", "dropdown", values=tuple(SAMPLERS)),
    "scheduler": Param("Scheduler", "dropdown", values=tuple(SCHEDULERS)),
    "initimage": Param("Init Image", "image"),
    "initimagecreativity": Param("Init Image Creativity", "decimal", 0, 1),
    "fluxguidancescale": Param("Flux Guidance Scale", "decimal", 0, 100),
    "variationseed": Param("Variation Seed", "integer", -1, LONG_MAX),
    "variationseedstrength": Param("Variation Seed Strength", "decimal", 0, 1),
    "donotsave": Param("Do Not Save", "boolean"),
    "batchsize": Param("Batch Size", "integer", 1, 100),
}


class ParamError(ValueError):
    """A value SwarmUI refuses; its text is what the server sends as `error`."""


def clean(name: str) -> str:
    return name.lower().replace(" ", "").replace("[", "").replace("]", "").strip()


def best_in_list(name: str, options: list[str], model: bool = False) -> str | None:
    """`GetBestInList` (with `.safetensors` dropped for models)."""

    def prep(text: str) -> str:
        return clean(text.removesuffix(".safetensors") if model else text)

    wanted, backup, best = prep(name), None, 999
    for option in options:
        cleaned = prep(option)
        if cleaned == wanted:
            return option
        if wanted in cleaned and len(cleaned) < best:
            backup, best = option, len(cleaned)
    return backup


def as_text(value: Any) -> str:
    """How the server turns a JSON value into the string it validates (Newtonsoft's ToString)."""
    if isinstance(value, bool):
        return "True" if value else "False"
    if isinstance(value, list):
        return "\n|||\n".join(as_text(v) for v in value)
    return str(value)


def validate(key: str, raw: Any, models: list[str]) -> Any:
    """The parsed value, or ParamError with the server's words."""
    param = PARAMS[key]
    try:
        return _check(param, as_text(raw), models)
    except ParamError as exc:
        raise ParamError(f"Invalid value for parameter {param.name}: {exc}") from None


def _check(param: Param, text: str, models: list[str]) -> Any:
    name = param.name
    if param.kind == "integer":
        if not re.fullmatch(r"-?\d+", text):
            raise ParamError(f"Invalid integer value for param {name} - '{text}' - must be a valid integer "
                             "(eg '0', '3', '-5', etc)")  # fmt: skip
        number = int(text)
        if not param.low <= number <= param.high:
            raise ParamError(f"Invalid integer value for param {name} - '{text}' - must be between "
                             f"{param.low:g} and {param.high:g}")  # fmt: skip
        return number
    if param.kind == "decimal":
        try:
            real = float(text)
        except ValueError:
            raise ParamError(f"Invalid decimal value for param {name} - '{text}' - must be a valid decimal "
                             "(eg '0.0', '3.5', '-5.2', etc)") from None  # fmt: skip
        if not param.low <= real <= param.high:
            raise ParamError(f"Invalid decimal value for param {name} - '{text}' - must be between "
                             f"{param.low:g} and {param.high:g}")  # fmt: skip
        return real
    if param.kind == "boolean":
        if text.lower() not in ("true", "false"):
            raise ParamError(f"Invalid boolean value for param {name} - '{text}' - must be exactly 'true' or 'false'")
        return text.lower() == "true"
    if param.kind == "dropdown":
        found = best_in_list(text, list(param.values))
        if found is None:
            raise ParamError(f"Invalid value for param {name} - '{text}' - must be one of: `"
                             + "`, `".join(param.values) + "`")  # fmt: skip
        return found
    if param.kind == "model":
        found = best_in_list(text, models, model=True)
        if found is None:
            raise ParamError(f"Invalid model value for param {name} - '{text}' - are you sure that model name is "
                             "correct?")  # fmt: skip
        return found
    if param.kind == "image":
        return _image(name, text)
    return text


def _image(name: str, text: str) -> bytes:
    data = text.split(",", 1)[1] if text.startswith("data:") else text
    if len(data) < 10 or not BASE64.match(data):
        short = data[:10] + "..." if len(data) > 10 else data
        raise ParamError(f"Invalid Image value for param {name} - '{text[:40]}' - must be a valid base64 string - "
                         f"got '{short}'")  # fmt: skip
    try:
        return base64.b64decode(data, validate=True)
    except binascii.Error:
        raise ParamError(f"Invalid Image value for param {name} - must be a valid base64 string") from None
