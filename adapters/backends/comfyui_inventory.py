"""What a ComfyUI server has, from `/object_info` and `/models/{folder}`, in the names presets use.

Presets name samplers and schedulers the A1111 way ("DPM++ 2M", "Karras"); the inventory lists both
those names (where the server has the ComfyUI sampler they translate to) and ComfyUI's own. A workflow
whose node types the server lacks makes that kind of job impossible here, which `lacks` says.
"""

from __future__ import annotations

from typing import Any

import httpx

from adapters.backends import comfyui_graph as graphs
from bot.errors import BackendError
from bot.ports import Inventory

MODULE_FOLDERS = ("vae", "text_encoders", "clip")


async def read_inventory(
    client: httpx.AsyncClient,
    info: dict[str, Any],
    workflow: str | None = None,
    node_map: dict[str, Any] | None = None,
    img2img_workflow: str | None = None,
    img2img_node_map: dict[str, Any] | None = None,
) -> Inventory:
    """The inventory from an `/object_info` answer plus the model folders (a folder the server lacks is skipped)."""
    node_types = frozenset(name for name in info if isinstance(name, str))
    checkpoints = await _folder(client, "checkpoints")
    if checkpoints is None:
        checkpoints = frozenset(_combo(info, "CheckpointLoaderSimple", "ckpt_name"))
    modules: set[str] = set()
    for folder in MODULE_FOLDERS:
        modules |= await _folder(client, folder) or frozenset()
    loras = await _folder(client, "loras")
    samplers = _combo(info, "KSampler", "sampler_name")
    schedulers = _combo(info, "KSampler", "scheduler")
    plans = [("txt2img", workflow or "sd_txt2img", node_map)]
    img2img = graphs.img2img_workflow(workflow, img2img_workflow, node_map)
    if img2img is not None:  # without one, the capabilities already say no img2img
        plans.append(("img2img", img2img, img2img_node_map if img2img_workflow else node_map))
    return Inventory(
        checkpoints=checkpoints,
        modules=frozenset(modules),
        loras=None if loras is None else frozenset(_lora_names(loras)),
        samplers=frozenset({name.lower() for name in samplers} | webui_samplers(samplers)),
        schedulers=frozenset({name.lower() for name in schedulers} | webui_schedulers(schedulers)),
        node_types=node_types,
        lacks=_lacks(plans, node_types),
    )


async def _folder(client: httpx.AsyncClient, folder: str) -> frozenset[str] | None:
    try:
        response = await client.get(f"/models/{folder}")
        data = response.json() if response.status_code == 200 else None
    except (httpx.HTTPError, ValueError):
        return None
    return frozenset(str(item) for item in data) if isinstance(data, list) else None


def _combo(info: dict[str, Any], node: str, field: str) -> list[str]:
    """The choices of a combo input (`[["a", "b"], {...}]`; newer servers: `["COMBO", {"options": [...]}]`)."""
    spec = ((info.get(node) or {}).get("input") or {}).get("required", {}).get(field)
    if not isinstance(spec, list) or not spec:
        return []
    if isinstance(spec[0], list):
        return [str(item) for item in spec[0]]
    if len(spec) > 1 and isinstance(spec[1], dict):
        return [str(item) for item in spec[1].get("options") or []]
    return []


def webui_samplers(available: list[str]) -> set[str]:
    """The WebUI sampler names presets use for the ComfyUI samplers a server lists."""
    return {name for name, (comfy, _) in graphs.SAMPLERS.items() if comfy in available}


def webui_schedulers(available: list[str]) -> set[str]:
    """The WebUI scheduler names presets use for the ComfyUI schedulers a server lists."""
    names = {name for name, comfy in graphs.SCHEDULERS.items() if comfy in available}
    return names | {name.replace("_", " ") for name in available}


def _lora_names(files: frozenset[str]) -> set[str]:
    names = set()
    for name in files:
        base = name.replace("\\", "/").rsplit("/", 1)[-1].lower()
        names |= {base, base.rsplit(".", 1)[0]}
    return names


def _lacks(
    plans: list[tuple[str, str, dict[str, Any] | None]], node_types: frozenset[str]
) -> tuple[tuple[str, str], ...]:
    """Kinds of job this server cannot run with the workflows it would be given (node types it lacks, no
    sampler to vary)."""
    lacks = []
    for kind, name, configured in plans:
        try:
            graph = graphs.load_workflow(name)
            mapping = graphs.node_map_for(name, configured)
        except BackendError as exc:
            lacks.append((kind, exc.user_message))
            continue
        missing = sorted({str(node.get("class_type")) for node in graph.values()} - node_types)
        if missing:
            lacks.append((kind, f"workflow {name} needs node types the server lacks: {', '.join(missing)}"))
        elif kind == "txt2img":
            try:
                graphs.add_variation(graph, mapping, 0, 0.5)
            except BackendError as exc:
                lacks.append(("variations", exc.user_message))
    return tuple(lacks)
