"""ComfyUI's `object_info` for the node classes the simulator runs, and `validate_prompt` as execution.py writes it.

Facts from ComfyUI v0.3.64 (`nodes.py`, `comfy/samplers.py`, `server.py` `node_info`, `execution.py`
`validate_prompt`/`validate_inputs`): an unknown class is `invalid_prompt`; strings convert to INT/FLOAT (or
`invalid_input_type`); a link of the wrong type is `return_type_mismatch`; min/max errors carry the limit in
`message` and only the input name in `details`; the top-level `details` lists only the output nodes' own errors
(so it is empty when the bad node is upstream of the output); inputs a class does not declare are ignored, a
missing optional input is fine. The edit models' classes are in `comfyui_edit_nodes`.
"""

from __future__ import annotations

from typing import Any

from simulators.comfyui_edit_nodes import EDIT_CLASSES, MODEL_FILES

CHECKPOINTS = ["v1-5-pruned-emaonly.safetensors", "sd_xl_base_1.0.safetensors", "flux1-dev-fp8.safetensors"]
# Model folders `/models/{folder}` knows (folder_paths.folder_names_and_paths); others answer 404.
MODEL_FOLDERS = ("checkpoints", "loras", "vae", "text_encoders", "clip", "diffusion_models", "upscale_models",
                 "embeddings", "controlnet", "clip_vision")  # fmt: skip
# comfy/samplers.py KSAMPLER_NAMES + ["ddim", "uni_pc", "uni_pc_bh2"], and SCHEDULER_HANDLERS, in v0.3.64.
SAMPLERS = [
    "euler", "euler_cfg_pp", "euler_ancestral", "euler_ancestral_cfg_pp", "heun", "heunpp2", "dpm_2",
    "dpm_2_ancestral", "lms", "dpm_fast", "dpm_adaptive", "dpmpp_2s_ancestral", "dpmpp_2s_ancestral_cfg_pp",
    "dpmpp_sde", "dpmpp_sde_gpu", "dpmpp_2m", "dpmpp_2m_cfg_pp", "dpmpp_2m_sde", "dpmpp_2m_sde_gpu",
    "dpmpp_2m_sde_heun", "dpmpp_2m_sde_heun_gpu", "dpmpp_3m_sde", "dpmpp_3m_sde_gpu", "ddpm", "lcm", "ipndm",
    "ipndm_v", "deis", "res_multistep", "res_multistep_cfg_pp", "res_multistep_ancestral",
    "res_multistep_ancestral_cfg_pp", "gradient_estimation", "gradient_estimation_cfg_pp", "er_sde", "seeds_2",
    "seeds_3", "sa_solver", "sa_solver_pece", "ddim", "uni_pc", "uni_pc_bh2",
]  # fmt: skip
SCHEDULERS = [
    "simple", "sgm_uniform", "karras", "exponential", "ddim_uniform", "beta", "normal", "linear_quadratic",
    "kl_optimal",
]  # fmt: skip
MAX_RESOLUTION = 16384
_SIZE = ("INT", {"default": 512, "min": 16, "max": MAX_RESOLUTION, "step": 8})
_BATCH = ("INT", {"default": 1, "min": 1, "max": 4096})
_SAVE = {"images": ("IMAGE",), "filename_prefix": ("STRING", {"default": "ComfyUI"})}

# class -> (required inputs, RETURN_TYPES, OUTPUT_NODE, CATEGORY)
_CLASSES: dict[str, tuple[dict[str, Any], tuple[str, ...], bool, str]] = {
    "CheckpointLoaderSimple": ({"ckpt_name": "CHECKPOINTS"}, ("MODEL", "CLIP", "VAE"), False, "loaders"),
    "CLIPTextEncode": (
        {"text": ("STRING", {"multiline": True, "dynamicPrompts": True}), "clip": ("CLIP",)},
        ("CONDITIONING",),
        False,
        "conditioning",
    ),
    "EmptyLatentImage": ({"width": _SIZE, "height": _SIZE, "batch_size": _BATCH}, ("LATENT",), False, "latent"),
    "EmptySD3LatentImage": ({"width": _SIZE, "height": _SIZE, "batch_size": _BATCH}, ("LATENT",), False, "latent"),
    "FluxGuidance": (
        {"conditioning": ("CONDITIONING",), "guidance": ("FLOAT", {"default": 3.5, "min": 0.0, "max": 100.0})},
        ("CONDITIONING",),
        False,
        "advanced/conditioning/flux",
    ),
    "KSampler": (
        {
            "model": ("MODEL",),
            "seed": ("INT", {"default": 0, "min": 0, "max": 0xFFFFFFFFFFFFFFFF, "control_after_generate": True}),
            "steps": ("INT", {"default": 20, "min": 1, "max": 10000}),
            "cfg": ("FLOAT", {"default": 8.0, "min": 0.0, "max": 100.0, "step": 0.1, "round": 0.01}),
            "sampler_name": (SAMPLERS,),
            "scheduler": (SCHEDULERS,),
            "positive": ("CONDITIONING",),
            "negative": ("CONDITIONING",),
            "latent_image": ("LATENT",),
            "denoise": ("FLOAT", {"default": 1.0, "min": 0.0, "max": 1.0, "step": 0.01}),
        },
        ("LATENT",),
        False,
        "sampling",
    ),
    "VAEDecode": ({"samples": ("LATENT",), "vae": ("VAE",)}, ("IMAGE",), False, "latent"),
    "VAEEncode": ({"pixels": ("IMAGE",), "vae": ("VAE",)}, ("LATENT",), False, "latent"),
    "LoadImage": ({"image": "INPUTS"}, ("IMAGE", "MASK"), False, "image"),
    "ImageScale": (
        {
            "image": ("IMAGE",),
            "upscale_method": (["nearest-exact", "bilinear", "area", "bicubic", "lanczos"],),
            "width": ("INT", {"default": 512, "min": 0, "max": MAX_RESOLUTION, "step": 1}),
            "height": ("INT", {"default": 512, "min": 0, "max": MAX_RESOLUTION, "step": 1}),
            "crop": (["disabled", "center"],),
        },
        ("IMAGE",),
        False,
        "image/upscaling",
    ),
    "RepeatLatentBatch": (
        {"samples": ("LATENT",), "amount": ("INT", {"default": 1, "min": 1, "max": 64})},
        ("LATENT",),
        False,
        "latent/batch",
    ),
    "SaveImage": (_SAVE, (), True, "image"),
    "PreviewImage": ({"images": ("IMAGE",)}, (), True, "image"),
}
_CLASSES |= {name: (entry[0], entry[2], False, entry[3]) for name, entry in EDIT_CLASSES.items()}
_OPTIONAL: dict[str, dict[str, Any]] = {name: entry[1] for name, entry in EDIT_CLASSES.items()}
_MODULES: dict[str, str] = {name: entry[4] for name, entry in EDIT_CLASSES.items()}


def required_inputs(class_type: str, inputs: list[str], checkpoints: list[str] | None = None) -> dict[str, Any]:
    """INPUT_TYPES()['required'] of a class, with the checkpoint and input-file lists filled in."""
    required = dict(_CLASSES[class_type][0])
    for name, spec in required.items():
        if spec == "CHECKPOINTS":
            required[name] = (
                list(CHECKPOINTS if checkpoints is None else checkpoints),
                {"tooltip": "The name of the checkpoint (model) to load."},
            )
        elif isinstance(spec, str) and spec in MODEL_FILES:
            required[name] = (list(MODEL_FILES[spec]),)
        elif spec == "INPUTS":  # os.listdir of the input folder: files in subfolders are not listed
            required[name] = (sorted(i for i in inputs if "/" not in i), {"image_upload": True})
    return required


def optional_inputs(class_type: str) -> dict[str, Any]:
    """INPUT_TYPES()['optional'] of a class (empty for most)."""
    return dict(_OPTIONAL.get(class_type, {}))


def return_types(class_type: str) -> tuple[str, ...]:
    return _CLASSES[class_type][1]


def is_output(class_type: str) -> bool:
    return _CLASSES[class_type][2]


def known(class_type: Any) -> bool:
    return isinstance(class_type, str) and class_type in _CLASSES


def object_info(inputs: list[str], checkpoints: list[str] | None = None) -> dict[str, Any]:
    """What GET /object_info returns (`server.py` `node_info`), for the node classes the simulator knows."""
    info: dict[str, Any] = {}
    for name, (_, output, output_node, category) in _CLASSES.items():
        required, optional = required_inputs(name, inputs, checkpoints), optional_inputs(name)
        info[name] = {
            "input": {"required": required} | ({"optional": optional} if optional else {}),
            "input_order": {"required": list(required)} | ({"optional": list(optional)} if optional else {}),
            "output": list(output),
            "output_is_list": [False] * len(output),
            "output_name": list(output),
            "name": name,
            "display_name": name,
            "description": "",
            "python_module": _MODULES.get(name, "nodes"),
            "category": category,
            "output_node": output_node,
        }
    return info


def _error(kind: str, message: str, details: str, extra: dict[str, Any]) -> dict[str, Any]:
    return {"type": kind, "message": message, "details": details, "extra_info": extra}


def _check_link(name: str, spec: Any, value: list[Any], graph: dict[str, Any]) -> dict[str, Any] | None:
    source = graph.get(str(value[0]))
    received = return_types(source["class_type"])[int(value[1])] if source and known(source.get("class_type")) else "*"
    if received != spec[0]:
        details = f"{name}, received_type({received}) mismatch input_type({spec[0]})"
        extra = {"input_name": name, "input_config": list(spec), "received_type": received, "linked_node": value}
        return _error("return_type_mismatch", "Return type mismatch between linked nodes", details, extra)
    return None


def _check_value(name: str, spec: Any, value: Any, inputs: dict[str, Any]) -> dict[str, Any] | None:
    kind, options = spec[0], (spec[1] if len(spec) > 1 else {})
    extra = {"input_name": name, "input_config": list(spec), "received_value": value}
    try:
        converter = {"INT": int, "FLOAT": float, "STRING": str}.get(kind) if isinstance(kind, str) else None
        if converter is not None:
            value = inputs[name] = converter(value)
    except (TypeError, ValueError) as exc:
        message = f"Failed to convert an input value to a {kind} value"
        return _error("invalid_input_type", message, f"{name}, {value}, {exc}", extra | {"exception_message": str(exc)})
    extra["received_value"] = value
    if "min" in options and value < options["min"]:
        return _error("value_smaller_than_min", f"Value {value} smaller than min of {options['min']}", name, extra)
    if "max" in options and value > options["max"]:
        return _error("value_bigger_than_max", f"Value {value} bigger than max of {options['max']}", name, extra)
    if isinstance(kind, list) and value not in kind:
        listed = f"(list of length {len(kind)})" if len(kind) > 20 else str(kind)
        if len(kind) > 20:
            extra["input_config"] = None
        return _error("value_not_in_list", "Value not in list", f"{name}: '{value}' not in {listed}", extra)
    return None


def _invalid_image(name: str, value: Any) -> dict[str, Any]:
    details = f"{name} - Invalid image file: {value}"
    return _error("custom_validation_failed", "Custom validation failed for node", details, {"input_name": name})


def _validate_node(
    node_id: str,
    graph: dict[str, Any],
    inputs_known: list[str],
    done: dict[str, tuple[bool, list[Any]]],
    checkpoints: list[str] | None = None,
) -> bool:
    """validate_inputs: this node's own errors, and upstream nodes' validity (recorded in `done`)."""
    if node_id in done:
        return done[node_id][0]
    node = graph[node_id]
    inputs = node.setdefault("inputs", {})
    errors: list[dict[str, Any]] = []
    valid = True
    required = required_inputs(node["class_type"], inputs_known, checkpoints)
    for name, spec in (required | optional_inputs(node["class_type"])).items():  # other names are ignored
        if name not in inputs and name not in required:
            continue
        if name not in inputs:
            errors.append(_error("required_input_missing", "Required input is missing", name, {"input_name": name}))
            continue
        value = inputs[name]
        if node["class_type"] == "LoadImage" and name == "image":  # VALIDATE_INPUTS replaces the list check
            problem = None if str(value) in inputs_known else _invalid_image(name, value)
        elif isinstance(value, list):
            problem = _check_link(name, spec, value, graph)
            if problem is None and not _validate_node(str(value[0]), graph, inputs_known, done, checkpoints):
                valid = False
        else:
            problem = _check_value(name, spec, value, inputs)
        if problem is not None:
            errors.append(problem)
    done[node_id] = (valid and not errors, errors)
    return done[node_id][0]


def validate(
    graph: Any, inputs_known: list[str], checkpoints: list[str] | None = None
) -> tuple[dict[str, Any], dict[str, Any]] | None:
    """None if the graph is valid, else (error, node_errors) as POST /prompt's 400 body has them."""
    if not isinstance(graph, dict):
        return _error("no_prompt", "No prompt provided", "No prompt provided", {}), {}
    for node_id, node in graph.items():
        if not isinstance(node, dict) or "class_type" not in node:
            message = "Cannot execute because a node is missing the class_type property."
            return _error("invalid_prompt", message, f"Node ID '#{node_id}'", {}), {}
        if not known(node["class_type"]):
            message = f"Cannot execute because node {node['class_type']} does not exist."
            return _error("invalid_prompt", message, f"Node ID '#{node_id}'", {}), {}
    outputs = [node_id for node_id, node in graph.items() if is_output(node["class_type"])]
    if not outputs:
        return _error("prompt_no_outputs", "Prompt has no outputs", "", {}), {}
    done: dict[str, tuple[bool, list[Any]]] = {}
    node_errors: dict[str, Any] = {}
    own: list[str] = []
    good = 0
    for output in outputs:
        if _validate_node(output, graph, inputs_known, done, checkpoints):
            good += 1
            continue
        own += [f"{e['message']}: {e['details']}" for e in done[output][1]]
        for node_id, (_, errors) in done.items():
            if errors:
                entry = node_errors.setdefault(
                    node_id, {"errors": errors, "dependent_outputs": [], "class_type": graph[node_id]["class_type"]}
                )
                entry["dependent_outputs"].append(output)
    if good:
        return None
    error = _error("prompt_outputs_failed_validation", "Prompt outputs failed validation", "\n".join(own), {})
    return error, node_errors


def execution_outputs(
    graph: dict[str, Any], inputs_known: list[str], checkpoints: list[str] | None = None
) -> list[str]:
    """The output nodes that passed validation (outputs_to_execute)."""
    done: dict[str, tuple[bool, list[Any]]] = {}
    outputs = [node_id for node_id, node in graph.items() if is_output(node["class_type"])]
    return [node_id for node_id in outputs if _validate_node(node_id, graph, inputs_known, done, checkpoints)]
