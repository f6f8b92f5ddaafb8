"""ComfyUI workflows: loading API-format graphs and writing a request's values into their node inputs.

A node map says which node input takes which value: `{"prompt": [["6", "text"]], "seed": [["3", "seed"]]}`.
The shipped workflows (`workflows/*.json`) come with their maps; custom workflows bring their own.
"""

from __future__ import annotations

import copy
import json
import re
from importlib import resources
from pathlib import Path
from typing import Any

from bot.errors import BackendError
from bot.models import GenerationRequest

NodeMap = dict[str, list[tuple[str, str]]]
Graph = dict[str, Any]

_SD_TXT2IMG: NodeMap = {
    "prompt": [("6", "text")],
    "negative": [("7", "text")],
    "seed": [("3", "seed")],
    "steps": [("3", "steps")],
    "cfg": [("3", "cfg")],
    "sampler": [("3", "sampler_name")],
    "scheduler": [("3", "scheduler")],
    "width": [("5", "width")],
    "height": [("5", "height")],
    "batch": [("5", "batch_size")],
    "checkpoint": [("4", "ckpt_name")],
}
_SD_IMG2IMG: NodeMap = {
    **{key: value for key, value in _SD_TXT2IMG.items() if key not in ("width", "height", "batch")},
    "width": [("11", "width")],
    "height": [("11", "height")],
    "batch": [("13", "amount")],
    "denoise": [("3", "denoise")],
    "init_image": [("10", "image")],
}
_FLUX: NodeMap = {**_SD_TXT2IMG, "guidance": [("30", "guidance")]}

SHIPPED: dict[str, NodeMap] = {"sd_txt2img": _SD_TXT2IMG, "sd_img2img": _SD_IMG2IMG, "flux_txt2img": _FLUX}

# A1111 sampler names (what presets use) -> ComfyUI sampler_name, optionally with the scheduler it implies.
SAMPLERS: dict[str, tuple[str, str | None]] = {
    "euler": ("euler", None),
    "euler a": ("euler_ancestral", None),
    "heun": ("heun", None),
    "dpm2": ("dpm_2", None),
    "dpm++ 2m": ("dpmpp_2m", None),
    "dpm++ 2m karras": ("dpmpp_2m", "karras"),
    "dpm++ 2m sde": ("dpmpp_2m_sde", None),
    "dpm++ 2m sde karras": ("dpmpp_2m_sde", "karras"),
    "dpm++ sde": ("dpmpp_sde", None),
    "dpm++ 3m sde": ("dpmpp_3m_sde", None),
    "ddim": ("ddim", None),
    "unipc": ("uni_pc", None),
    "lcm": ("lcm", None),
}
SCHEDULERS = {"automatic": "normal", "uniform": "normal", "sgm uniform": "sgm_uniform", "align your steps": "normal"}


def workflow_name(request: GenerationRequest, configured: str | None) -> str:
    """Which workflow serves the request: the configured one, else Flux or SD by checkpoint and kind."""
    if configured:
        return configured
    if request.kind == "img2img":
        return "sd_img2img"
    return "flux_txt2img" if "flux" in request.checkpoint.lower() else "sd_txt2img"


def load_workflow(name: str) -> Graph:
    """A shipped workflow by name, or a path to an API-format JSON file."""
    path = Path(name)
    if path.suffix == ".json" and path.is_file():
        text = path.read_text(encoding="utf-8")
    else:
        resource = resources.files("adapters.backends").joinpath(f"workflows/{name}.json")
        if not resource.is_file():
            raise BackendError.of("backend.comfy_no_workflow", name=name)
        text = resource.read_text(encoding="utf-8")
    graph = json.loads(text)
    if not isinstance(graph, dict) or not all(isinstance(node, dict) for node in graph.values()):
        raise BackendError.of("backend.comfy_not_api_format", name=name)
    return graph


def node_map_for(name: str, configured: dict[str, Any] | None) -> NodeMap:
    if configured:
        return {key: [(str(node), str(field)) for node, field in targets] for key, targets in configured.items()}
    base = Path(name).stem
    if base not in SHIPPED:
        raise BackendError.of("backend.comfy_no_node_map", name=name)
    return SHIPPED[base]


def checkpoint_file(checkpoint: str) -> str:
    """'sd_xl_base_1.0.safetensors [31e35c80fc]' (an A1111 title) -> 'sd_xl_base_1.0.safetensors'."""
    return re.sub(r"\s*\[[0-9a-fA-F]+\]$", "", checkpoint).strip()


def sampler_and_scheduler(request: GenerationRequest) -> tuple[str, str]:
    sampler, implied = SAMPLERS.get(request.sampler.lower(), (request.sampler, None))
    scheduler = (request.scheduler or implied or "normal").lower()
    return sampler, SCHEDULERS.get(scheduler, scheduler.replace(" ", "_"))


def values_for(request: GenerationRequest, init_image: str | None) -> dict[str, Any]:
    sampler, scheduler = sampler_and_scheduler(request)
    values: dict[str, Any] = {
        "prompt": request.prompt,
        "negative": request.negative_prompt,
        "seed": request.seed,
        "steps": request.steps,
        "cfg": request.cfg_scale,
        "sampler": sampler,
        "scheduler": scheduler,
        "width": request.width,
        "height": request.height,
        "batch": request.count,
        "checkpoint": checkpoint_file(request.checkpoint),
        "denoise": request.denoising_strength if request.denoising_strength is not None else 0.6,
        "guidance": request.distilled_cfg_scale if request.distilled_cfg_scale is not None else 3.5,
    }
    if init_image is not None:
        values["init_image"] = init_image
    return values


def patch(graph: Graph, node_map: NodeMap, values: dict[str, Any]) -> Graph:
    """A copy of the graph with each mapped input set; a map pointing at a missing node is a config error."""
    patched = copy.deepcopy(graph)
    for key, targets in node_map.items():
        if key not in values:
            continue
        for node_id, field in targets:
            node = patched.get(node_id)
            if node is None:
                raise BackendError.of("backend.comfy_bad_node_map", name=key, node=node_id)
            node.setdefault("inputs", {})[field] = values[key]
    return patched


def output_nodes(graph: Graph) -> list[str]:
    """Nodes whose images are results (SaveImage/PreviewImage, as Open WebUI does)."""
    return [node_id for node_id, node in graph.items() if node.get("class_type") in ("SaveImage", "PreviewImage")]


def explain_validation(body: Any) -> BackendError:
    """A 400 from POST /prompt (`error` + `node_errors`) as a message a user understands."""
    if not isinstance(body, dict):
        return BackendError.of("backend.comfy_refused_workflow", detail=str(body)[:300])
    raw_error = body.get("error")
    error: dict[str, Any] = raw_error if isinstance(raw_error, dict) else {}
    kind = str(error.get("type", ""))
    parts: list[str] = []
    raw_nodes = body.get("node_errors")
    node_errors: dict[str, Any] = raw_nodes if isinstance(raw_nodes, dict) else {}
    for node_id, entry in node_errors.items():
        for item in entry.get("errors", []) if isinstance(entry, dict) else []:
            parts.append(_node_error(str(node_id), str(entry.get("class_type", "?")), item))
    if kind == "missing_node_type":
        return BackendError.of(
            "backend.comfy_missing_node", detail=kind, details=error.get("details") or error.get("message")
        )
    if kind in ("no_prompt", "prompt_no_outputs"):
        return BackendError.of("backend.comfy_no_output", detail=kind)
    reason = "; ".join(parts[:3]) if parts else error.get("message")
    if not reason:
        return BackendError.of("backend.comfy_rejected_no_reason", detail=kind)
    return BackendError.of("backend.comfy_rejected", detail=kind, reason=reason)


def _node_error(node_id: str, class_type: str, item: Any) -> str:
    if not isinstance(item, dict):
        return f"node {node_id} ({class_type}) is invalid"
    kind = item.get("type")
    extra = item.get("extra_info") or {}
    name = extra.get("input_name", "an input")
    if kind == "value_not_in_list":
        what = "model" if "ckpt" in str(name) or "unet" in str(name) else str(name)
        return f"the {what} {extra.get('received_value')!r} is not available on the server"
    if kind == "required_input_missing":
        return f"node {node_id} ({class_type}) lacks its input {name}"
    if kind in ("value_smaller_than_min", "value_bigger_than_max"):
        return f"{name} is out of range ({item.get('details', '')})"
    return f"node {node_id} ({class_type}): {item.get('details') or item.get('message')}"
