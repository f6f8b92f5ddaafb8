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


def img2img_workflow(txt2img: str | None, img2img: str | None, node_map: dict[str, Any] | None) -> str | None:
    """The workflow img2img runs on: the named one, a configured workflow that maps `init_image`, or the shipped
    `sd_img2img` when nothing is configured. None: this backend cannot do img2img (a txt2img-only workflow)."""
    if img2img:
        return img2img
    if txt2img:
        return txt2img if node_map and "init_image" in node_map else None
    return "sd_img2img"


def workflow_for(
    request: GenerationRequest, txt2img: str | None, img2img: str | None, node_map: dict[str, Any] | None
) -> str:
    """Which workflow serves the request; img2img without an img2img workflow is refused before anything runs."""
    if request.kind == "img2img":
        name = img2img_workflow(txt2img, img2img, node_map)
        if name is None:
            raise BackendError.of("backend.comfy_no_img2img", workflow=txt2img)
        return name
    if txt2img:
        return txt2img
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


def values_for(request: GenerationRequest, init_image: str | None, seed: int) -> dict[str, Any]:
    """One image's values: ComfyUI samples a batch from one seed, so each image is its own prompt (batch 1)."""
    sampler, scheduler = sampler_and_scheduler(request)
    values: dict[str, Any] = {
        "prompt": request.prompt,
        "negative": request.negative_prompt,
        "seed": seed,
        "steps": request.steps,
        "cfg": request.cfg_scale,
        "sampler": sampler,
        "scheduler": scheduler,
        "width": request.width,
        "height": request.height,
        "batch": 1,
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


def add_variation(graph: Graph, node_map: NodeMap, subseed: int, strength: float) -> Graph:
    """A real variation: the sampler's finished latent is sampled again from `subseed` at a partial denoise.

    ComfyUI has no A1111 subseed; re-sampling the parent's latent keeps its composition and changes its details.
    `strength` is the A1111 subseed strength (0-1), mapped to a denoise of 0.3-1.0.
    """
    sampler_id = next((node for node, field in node_map.get("seed", []) if field == "seed"), None)
    sampler = graph.get(sampler_id or "")
    if sampler is None or sampler.get("class_type") != "KSampler":
        raise BackendError.of("backend.comfy_no_variation")
    varied = copy.deepcopy(graph)
    new_id = str(max((int(k) for k in varied if k.isdigit()), default=0) + 1)
    for node in varied.values():  # everything that read the sampler's latent reads the variation's
        inputs = node.get("inputs", {})
        for name, value in inputs.items():
            if isinstance(value, list) and len(value) == 2 and str(value[0]) == sampler_id:
                inputs[name] = [new_id, value[1]]
    inputs = {**sampler["inputs"], "seed": subseed, "denoise": round(0.3 + 0.7 * min(max(strength, 0.0), 1.0), 3)}
    varied[new_id] = {"class_type": "KSampler", "inputs": {**inputs, "latent_image": [sampler_id, 0]}}
    return varied
