"""ComfyUI's errors as messages a user understands, read the way ComfyUI v0.3.64 writes them.

- POST /prompt 400 (`execution.py` `validate_prompt`): `error.type` is `invalid_prompt` for an unknown node class
  ("Cannot execute because node X does not exist."; older builds said `missing_node_type`), otherwise
  `prompt_outputs_failed_validation` with per-node `errors`: `message` holds the limit ("Value 0 smaller than
  min of 1"), `details` often only the input name, `extra_info` the input name and the received value.
- `execution_error` (WebSocket or history): a node raised; only out-of-memory says anything about the backend.
"""

from __future__ import annotations

import re
from typing import Any

from bot.errors import BackendError

_MISSING = re.compile(r"node (.+?) does not exist")


def explain_validation(body: Any) -> BackendError:
    """A 400 from POST /prompt as a non-retryable error naming the node, the input and the value."""
    if not isinstance(body, dict):
        return BackendError.of("backend.comfy_refused_workflow", detail=str(body)[:300])
    raw_error = body.get("error")
    error: dict[str, Any] = raw_error if isinstance(raw_error, dict) else {}
    kind, message = str(error.get("type", "")), str(error.get("message") or "")
    missing = _MISSING.search(message)
    if kind in ("invalid_prompt", "missing_node_type") and (missing or kind == "missing_node_type"):
        node_class = missing.group(1) if missing else "?"
        details = f"{node_class}, {error.get('details')}" if error.get("details") else node_class
        return BackendError.of("backend.comfy_missing_node", detail=kind, details=details)
    if kind in ("no_prompt", "prompt_no_outputs"):
        return BackendError.of("backend.comfy_no_output", detail=kind)
    raw_nodes = body.get("node_errors")
    node_errors: dict[str, Any] = raw_nodes if isinstance(raw_nodes, dict) else {}
    parts = [
        node_error(str(node_id), str(entry.get("class_type", "?")), item)
        for node_id, entry in node_errors.items()
        if isinstance(entry, dict)
        for item in entry.get("errors", [])
    ]
    reason = "; ".join(parts[:3]) or message or str(error.get("details") or "")
    if not reason:
        return BackendError.of("backend.comfy_rejected_no_reason", detail=kind)
    return BackendError.of("backend.comfy_rejected", detail=kind, reason=reason)


def node_error(node_id: str, class_type: str, item: Any) -> str:
    """One entry of `node_errors[id].errors`: "node 3 (KSampler): steps = 0: Value 0 smaller than min of 1"."""
    where = f"node {node_id} ({class_type})"
    if not isinstance(item, dict):
        return f"{where} is invalid"
    kind, message, details = item.get("type"), str(item.get("message") or ""), str(item.get("details") or "")
    raw_extra = item.get("extra_info")
    extra: dict[str, Any] = raw_extra if isinstance(raw_extra, dict) else {}
    name = str(extra.get("input_name") or details or "an input")
    value = extra.get("received_value")
    if kind == "value_not_in_list":
        if any(word in name for word in ("ckpt", "unet", "model", "lora", "vae")):
            return f"the model {value!r} is not available on the server ({where})"
        return f"{where}: {name} = {value!r} is not one of the values this server offers"
    if kind == "required_input_missing":
        return f"{where} lacks its input {name}"
    if kind == "return_type_mismatch":
        return f"{where}: input {name} is linked to an output of type {extra.get('received_type', '?')}"
    if kind in ("value_smaller_than_min", "value_bigger_than_max", "invalid_input_type"):
        return f"{where}: {name} = {value!r}: {message}"
    return f"{where}: {message}" + (f" ({details})" if details and details != name else "")


def is_out_of_memory(data: dict[str, Any]) -> bool:
    text = f"{data.get('exception_type', '')} {data.get('exception_message', '')}".lower()
    return "outofmemory" in text or "out of memory" in text or "allocation on device" in text


def execution_error(data: dict[str, Any]) -> BackendError:
    """A node raised while running: the job fails with its message; out of memory is the backend's problem."""
    message = str(data.get("exception_message") or "").strip().split("\n")[0] or str(data.get("exception_type"))
    return BackendError.of(
        "backend.comfy_node_failed",
        retryable=is_out_of_memory(data),
        node=data.get("node_id"),
        node_type=data.get("node_type"),
        reason=message,
    )
