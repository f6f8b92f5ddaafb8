"""A small ComfyUI `object_info` and the `validate_prompt` rules the simulator applies to graphs."""

from __future__ import annotations

from typing import Any

CHECKPOINTS = ["v1-5-pruned-emaonly.safetensors", "sd_xl_base_1.0.safetensors", "flux1-dev-fp8.safetensors"]
SAMPLERS = ["euler", "euler_ancestral", "heun", "dpm_2", "dpmpp_2m", "dpmpp_2m_sde", "dpmpp_sde", "ddim", "uni_pc"]
SCHEDULERS = ["normal", "karras", "exponential", "sgm_uniform", "simple", "ddim_uniform", "beta"]
_SIZE = ["INT", {"default": 512, "min": 16, "max": 16384, "step": 8}]
_BATCH = ["INT", {"default": 1, "min": 1, "max": 4096}]


def object_info(inputs: list[str]) -> dict[str, Any]:
    """What GET /object_info returns, for the node classes the simulator knows."""
    classes: dict[str, tuple[dict[str, Any], list[str]]] = {
        "CheckpointLoaderSimple": ({"ckpt_name": [list(CHECKPOINTS)]}, ["MODEL", "CLIP", "VAE"]),
        "CLIPTextEncode": ({"text": ["STRING", {"multiline": True}], "clip": ["CLIP"]}, ["CONDITIONING"]),
        "EmptyLatentImage": ({"width": _SIZE, "height": _SIZE, "batch_size": _BATCH}, ["LATENT"]),
        "EmptySD3LatentImage": ({"width": _SIZE, "height": _SIZE, "batch_size": _BATCH}, ["LATENT"]),
        "FluxGuidance": (
            {"conditioning": ["CONDITIONING"], "guidance": ["FLOAT", {"min": 0, "max": 100}]},
            ["CONDITIONING"],
        ),
        "KSampler": (
            {
                "model": ["MODEL"],
                "seed": ["INT", {"min": 0, "max": 0xFFFFFFFFFFFFFFFF}],
                "steps": ["INT", {"min": 1, "max": 10000}],
                "cfg": ["FLOAT", {"min": 0.0, "max": 100.0}],
                "sampler_name": [list(SAMPLERS)],
                "scheduler": [list(SCHEDULERS)],
                "positive": ["CONDITIONING"],
                "negative": ["CONDITIONING"],
                "latent_image": ["LATENT"],
                "denoise": ["FLOAT", {"min": 0.0, "max": 1.0}],
            },
            ["LATENT"],
        ),
        "VAEDecode": ({"samples": ["LATENT"], "vae": ["VAE"]}, ["IMAGE"]),
        "VAEEncode": ({"pixels": ["IMAGE"], "vae": ["VAE"]}, ["LATENT"]),
        "LoadImage": ({"image": [sorted(inputs), {"image_upload": True}]}, ["IMAGE", "MASK"]),
        "ImageScale": (
            {
                "image": ["IMAGE"],
                "upscale_method": [["nearest-exact", "bilinear", "area", "bicubic", "lanczos"]],
                "width": _SIZE,
                "height": _SIZE,
                "crop": [["disabled", "center"]],
            },
            ["IMAGE"],
        ),
        "RepeatLatentBatch": ({"samples": ["LATENT"], "amount": ["INT", {"min": 1, "max": 64}]}, ["LATENT"]),
        "SaveImage": ({"images": ["IMAGE"], "filename_prefix": ["STRING", {"default": "ComfyUI"}]}, []),
    }
    return {
        name: {"input": {"required": required}, "output": output, "name": name, "output_node": name == "SaveImage"}
        for name, (required, output) in classes.items()
    }


def _error(kind: str, message: str, details: str, name: str, value: Any = None) -> dict[str, Any]:
    extra = {"input_name": name, "input_config": None, "received_value": value}
    return {"type": kind, "message": message, "details": details, "extra_info": extra}


def _check_input(name: str, spec: list[Any], value: Any, graph: dict[str, Any]) -> dict[str, Any] | None:
    kind = spec[0]
    if isinstance(value, list) and len(value) == 2 and isinstance(value[0], str):
        if value[0] not in graph:
            return _error("bad_linked_input", "Bad linked input", f"{name}: node {value[0]} missing", name, value)
        return None
    if isinstance(kind, list):
        if value not in kind:
            details = f"{name}: {value!r} not in {kind}"
            return _error("value_not_in_list", "Value not in list", details, name, value)
        return None
    limits = spec[1] if len(spec) > 1 else {}
    if kind in ("INT", "FLOAT"):
        if not isinstance(value, int | float) or isinstance(value, bool):
            return _error("invalid_input_type", "Invalid input type", f"{name}: {value!r}", name, value)
        if "min" in limits and value < limits["min"]:
            details = f"Value {value} smaller than min of {limits['min']}: {name}"
            return _error("value_smaller_than_min", "Value smaller than min", details, name, value)
        if "max" in limits and value > limits["max"]:
            details = f"Value {value} bigger than max of {limits['max']}: {name}"
            return _error("value_bigger_than_max", "Value bigger than max", details, name, value)
    return None


def validate(graph: Any, info: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]] | None:
    """None if the graph is valid, else (error, node_errors) as POST /prompt's 400 body has them."""
    if not isinstance(graph, dict) or not graph:
        return {"type": "no_prompt", "message": "No prompt provided", "details": "", "extra_info": {}}, {}
    for node_id, node in graph.items():
        class_type = node.get("class_type") if isinstance(node, dict) else None
        if class_type not in info:
            details = f"Node ID '#{node_id}'"
            message = f"Cannot execute because node {class_type} does not exist."
            return {"type": "missing_node_type", "message": message, "details": details, "extra_info": {}}, {}
    outputs = [node_id for node_id, node in graph.items() if info[node["class_type"]]["output_node"]]
    if not outputs:
        error = {"type": "prompt_no_outputs", "message": "Prompt has no outputs", "details": "", "extra_info": {}}
        return error, {}
    node_errors: dict[str, Any] = {}
    for node_id, node in graph.items():
        errors = []
        inputs = node.get("inputs") or {}
        for name, spec in info[node["class_type"]]["input"]["required"].items():
            if name not in inputs:
                errors.append(_error("required_input_missing", "Required input is missing", name, name))
                continue
            problem = _check_input(name, spec, inputs[name], graph)
            if problem is not None:
                errors.append(problem)
        if errors:
            node_errors[node_id] = {"errors": errors, "dependent_outputs": outputs, "class_type": node["class_type"]}
    if not node_errors:
        return None
    first = next(iter(node_errors.values()))["errors"][0]
    error = {
        "type": "prompt_outputs_failed_validation",
        "message": "Prompt outputs failed validation",
        "details": f"{first['message']}: {first['details']}",
        "extra_info": {},
    }
    return error, node_errors
