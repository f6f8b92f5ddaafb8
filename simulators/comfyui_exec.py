"""The simulator's PromptExecutor: what ComfyUI v0.3.64 does with one queued prompt (`execution.py`, `main.py`).

- Messages: `add_message` sends to the prompt's client_id only (none at all without one, unless broadcast);
  `execution_interrupted` is "broadcast" yet goes to the owner's sid, so it reaches everybody only when the
  prompt has no client_id.
- Order: only nodes that outputs need run, dependencies first, an output node as soon as it is ready
  (`ExecutionList.ux_friendly_pick_node`). Cached nodes (same inputs as in the last prompt) do not run again;
  a cached output node still sends `executed`.
- Sampling progress (`main.py` `hijack_progress`): `progress_state`, then the metadata preview (event 4) for a
  socket that negotiated it, then `progress`, then the plain preview (event 1) for everyone else; with no
  client_id the sid is None, so progress and plain previews go to every socket.
- A batch is sampled from ONE seed: image b of a batch is not the image of seed+b.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import json
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from PIL import Image, ImageOps

from simulators.comfyui_edit_nodes import EDIT_CLASSES, run_edit_node
from simulators.comfyui_nodes import is_output, return_types
from simulators.images import encode_png, partial_image, render_image

OOM_TIPS = (
    "This error means you ran out of memory on your GPU.\n\nTIPS: If the workflow worked before you might have"
    " accidentally set the batch_size to a large number."
)


@dataclass
class Prompt:
    """A queue item: (number, prompt_id, prompt, extra_data, outputs_to_execute)."""

    number: float
    prompt_id: str
    graph: dict[str, Any]
    extra_data: dict[str, Any]
    outputs: list[str]

    @property
    def client_id(self) -> str | None:
        value = self.extra_data.get("client_id")
        return str(value) if value is not None else None

    def row(self) -> list[Any]:
        return [self.number, self.prompt_id, self.graph, self.extra_data, self.outputs]


class Interrupted(Exception):
    """comfy.model_management.InterruptProcessingException."""


class NodeFailure(Exception):
    """An exception raised inside a node's function."""

    def __init__(self, exception_type: str, message: str) -> None:
        super().__init__(message)
        self.exception_type = exception_type


Send = Callable[[str, dict[str, Any], str | None], Awaitable[None]]
SendPreview = Callable[[Image.Image, dict[str, Any], str | None, bool], Awaitable[None]]


@dataclass
class Executor:
    """Runs prompts one at a time; `send`/`send_preview` are the server's (sid None = every socket)."""

    send: Send
    send_preview: SendPreview
    files: Callable[[str], dict[str, bytes]]
    seconds_per_step: float = 0.005
    previews: bool = True
    interrupt_flag: bool = False
    fail: dict[str, tuple[str, str]] = field(default_factory=dict)  # class_type -> (exception type, message)
    cache: dict[str, tuple[Any, dict[str, Any] | None]] = field(default_factory=dict)
    counter: int = 0

    async def execute(self, prompt: Prompt) -> tuple[bool, list[list[Any]], dict[str, Any]]:
        """Run one prompt; returns (success, status messages, history outputs)."""
        self.interrupt_flag = False
        sid, messages = prompt.client_id, []

        async def add_message(event: str, data: dict[str, Any], broadcast: bool) -> None:
            data = {**data, "timestamp": int(time.time() * 1000)}
            messages.append([event, data])
            if sid is not None or broadcast:
                await self.send(event, data, sid)

        await add_message("execution_start", {"prompt_id": prompt.prompt_id}, False)
        signatures = {node_id: self._signature(prompt.graph, node_id, {}) for node_id in prompt.graph}
        cached = [node_id for node_id in prompt.graph if signatures[node_id] in self.cache]
        await add_message("execution_cached", {"nodes": cached, "prompt_id": prompt.prompt_id}, False)
        current_outputs = list(cached)
        order = _ExecutionList(prompt.graph, set(cached))
        for output_id in prompt.outputs:
            order.add(output_id)
        executed: list[str] = []
        ui: dict[str, Any] = {}
        success = True
        while (node_id := order.pick()) is not None:
            node = prompt.graph[node_id]
            try:
                output = await self._run(prompt, node_id, signatures[node_id])
            except (Interrupted, NodeFailure) as exc:
                success = False
                base = {"prompt_id": prompt.prompt_id, "node_id": node_id, "node_type": node["class_type"]}
                base["executed"] = list(executed)
                if isinstance(exc, Interrupted):
                    await add_message("execution_interrupted", base, True)
                else:
                    details = self._error(prompt, node_id, exc, current_outputs)
                    await add_message("execution_error", base | details, False)
                break
            if output is not None:
                ui[node_id] = output
            if node_id not in cached:
                executed.append(node_id)
            order.complete(node_id)
        if success:
            await add_message("execution_success", {"prompt_id": prompt.prompt_id}, False)
        keep = set(signatures.values())
        self.cache = {sig: value for sig, value in self.cache.items() if sig in keep}
        for node_id in prompt.graph:  # the ui cache of this prompt's nodes (cached ones included) is its history
            entry = self.cache.get(signatures[node_id])
            if entry is not None and entry[1] is not None:
                ui[node_id] = entry[1]
        return success, messages, ui

    def _error(self, prompt: Prompt, node_id: str, exc: NodeFailure, outputs: list[str]) -> dict[str, Any]:
        inputs = prompt.graph[node_id].get("inputs", {})
        formatted = {k: [v if not isinstance(v, list) else f"<linked output {v[0]}:{v[1]}>"] for k, v in inputs.items()}
        tips = OOM_TIPS if "OutOfMemory" in exc.exception_type else ""
        return {
            "exception_message": f"{exc}\n{tips}",
            "exception_type": exc.exception_type,
            "traceback": ['  File "execution.py", line 496, in execute\n', f"    {exc.exception_type}: {exc}\n"],
            "current_inputs": formatted,
            "current_outputs": list(outputs),
        }

    def _signature(self, graph: dict[str, Any], node_id: str, memo: dict[str, str]) -> str:
        """The input signature (`caching.py`): class, literal inputs and the signatures of linked nodes."""
        if node_id in memo:
            return memo[node_id]
        node = graph[node_id]
        parts: list[Any] = [node["class_type"]]
        for name, value in sorted(node.get("inputs", {}).items()):
            if isinstance(value, list) and len(value) == 2 and str(value[0]) in graph:
                parts.append([name, self._signature(graph, str(value[0]), memo), value[1]])
            else:
                parts.append([name, value])
        if node["class_type"] == "LoadImage":  # IS_CHANGED hashes the file
            parts.append(hashlib.sha256(self.files("input").get(str(node["inputs"].get("image")), b"")).hexdigest())
        memo[node_id] = hashlib.sha256(json.dumps(parts, default=str).encode()).hexdigest()
        return memo[node_id]

    async def _run(self, prompt: Prompt, node_id: str, signature: str) -> dict[str, Any] | None:
        """One node: `executed` again for a cached output, else `executing`, the function and its `executed`."""
        sid, node = prompt.client_id, prompt.graph[node_id]
        display = {"node": node_id, "display_node": node_id, "prompt_id": prompt.prompt_id}
        if signature in self.cache:
            ui = self.cache[signature][1]
            if sid is not None:
                await self.send("executed", display | {"output": ui}, sid)
            return None
        await self._state(prompt, node_id, "running", 0, 1)
        if sid is not None:
            await self.send("executing", display, sid)
        await asyncio.sleep(0)
        if node["class_type"] in self.fail:
            kind, message = self.fail.pop(node["class_type"])
            raise NodeFailure(kind, message)
        outputs, ui = await self._function(prompt, node_id)
        self.cache[signature] = (outputs, ui)
        await self._state(prompt, node_id, "finished", 1, 1)
        if ui is not None and sid is not None:
            await self.send("executed", display | {"output": ui}, sid)
        return ui

    async def _state(self, prompt: Prompt, node_id: str, state: str, value: float, top: float) -> None:
        ids: dict[str, Any] = {"node_id": node_id, "prompt_id": prompt.prompt_id, "display_node_id": node_id}
        ids |= {"parent_node_id": None, "real_node_id": node_id}
        nodes = {node_id: {"value": value, "max": top, "state": state, **ids}}
        await self.send("progress_state", {"prompt_id": prompt.prompt_id, "nodes": nodes}, prompt.client_id)

    def _input(self, prompt: Prompt, node_id: str, name: str) -> Any:
        value = prompt.graph[node_id]["inputs"][name]
        if isinstance(value, list) and len(value) == 2:
            return self.cache[self._signature(prompt.graph, str(value[0]), {})][0][int(value[1])]
        return value

    async def _function(self, prompt: Prompt, node_id: str) -> tuple[tuple[Any, ...], dict[str, Any] | None]:
        kind = prompt.graph[node_id]["class_type"]

        def get(name: str) -> Any:
            return self._input(prompt, node_id, name)

        if kind == "CheckpointLoaderSimple":
            return (get("ckpt_name"),) * 3, None
        if kind == "CLIPTextEncode":
            return ({"text": str(get("text"))},), None
        if kind == "FluxGuidance":
            return (get("conditioning"),), None
        if kind in ("EmptyLatentImage", "EmptySD3LatentImage"):
            return ({"size": (int(get("width")), int(get("height"))), "batch": int(get("batch_size"))},), None
        if kind == "LoadImage":
            image = Image.open(io.BytesIO(self.files("input")[str(get("image"))])).convert("RGB")
            return ([image], None), None
        if kind == "ImageScale":
            size = (int(get("width")), int(get("height")))
            return ([ImageOps.fit(i, size) for i in get("image")],), None
        if kind == "VAEEncode":
            images = get("pixels")
            return ({"size": images[0].size, "batch": len(images), "images": images},), None
        if kind == "RepeatLatentBatch":
            latent = get("samples")
            amount = int(get("amount"))
            return ({**latent, "batch": latent["batch"] * amount, "images": latent["images"] * amount},), None
        if kind == "KSampler":
            return (await self._sample(prompt, node_id, get),), None
        if kind == "VAEDecode":
            return (get("samples")["images"],), None
        if kind in EDIT_CLASSES:
            return run_edit_node(kind, get, lambda name: name in prompt.graph[node_id]["inputs"]), None
        return (), {"images": self._save(kind, get("images"), prompt.graph[node_id])}

    async def _sample(self, prompt: Prompt, node_id: str, get: Callable[[str], Any]) -> dict[str, Any]:
        latent, steps, seed = get("latent_image"), int(get("steps")), int(get("seed"))
        text, denoise, (width, height) = get("positive")["text"], float(get("denoise")), latent["size"]
        finals = []
        for index in range(latent["batch"]):  # one seed for the whole batch
            fresh = render_image(text if index == 0 else f"{text}\x00batch {index}", seed, width, height)
            source = (latent.get("images") or [None])[index % max(1, len(latent.get("images") or []))]
            finals.append(fresh if source is None else Image.blend(source.resize(fresh.size), fresh, denoise))
        if get("positive").get("references"):  # an edit model: the result follows its reference images
            finals = [edited(get("positive")["references"], image) for image in finals]
        for step in range(1, steps + 1):
            await asyncio.sleep(self.seconds_per_step)
            if self.interrupt_flag:  # throw_exception_if_processing_interrupted, in the progress hook
                raise Interrupted()
            preview = partial_image(finals[0], step / steps) if self.previews else None
            await self._progress(prompt, node_id, step, steps, preview)
        return {"size": (width, height), "batch": latent["batch"], "images": finals}

    async def _progress(self, prompt: Prompt, node_id: str, value: int, top: int, preview: Image.Image | None) -> None:
        sid = prompt.client_id
        await self._state(prompt, node_id, "running", value, top)
        meta: dict[str, Any] = {"node_id": node_id, "prompt_id": prompt.prompt_id, "display_node_id": node_id}
        meta |= {"parent_node_id": None, "real_node_id": node_id}
        if preview is not None:
            await self.send_preview(preview, meta, sid, True)  # event 4, only where negotiated
        data = {"value": value, "max": top, "prompt_id": prompt.prompt_id, "node": node_id}
        await self.send("progress", data, sid)
        if preview is not None:
            await self.send_preview(preview, meta, sid, False)  # event 1, only where not negotiated

    def _save(self, kind: str, images: list[Image.Image], node: dict[str, Any]) -> list[dict[str, str]]:
        folder = "output" if kind == "SaveImage" else "temp"
        prefix = str(node["inputs"].get("filename_prefix", "ComfyUI")) if kind == "SaveImage" else "ComfyUI_temp"
        saved = []
        for image in images:
            self.counter += 1
            name = f"{prefix}_{self.counter:05}_.png"
            self.files(folder)[name] = encode_png(image, None)
            saved.append({"filename": name, "subfolder": "", "type": folder})
        return saved


def edited(references: list[Image.Image], fresh: Image.Image) -> Image.Image:
    """An "edit": the references (the first one weighing most) fitted to the latent's size, tinted by the render."""
    base = ImageOps.fit(references[0], fresh.size)
    for extra in references[1:]:
        base = Image.blend(base, ImageOps.fit(extra, fresh.size), 0.3)
    return Image.blend(base, fresh, 0.35)


class _ExecutionList:
    """`comfy_execution/graph.py` ExecutionList: pending nodes, their blockers, the UX-friendly pick."""

    def __init__(self, graph: dict[str, Any], cached: set[str]) -> None:
        self.graph, self.cached = graph, cached
        self.pending: dict[str, int] = {}  # node -> how many pending nodes it waits for
        self.blocking: dict[str, set[str]] = {}

    def add(self, node_id: str) -> None:
        stack = [node_id]
        while stack:
            current = stack.pop()
            if current in self.pending:
                continue
            self.pending[current] = 0
            self.blocking.setdefault(current, set())
            for value in self.graph[current].get("inputs", {}).values():
                if isinstance(value, list) and len(value) == 2 and str(value[0]) not in self.cached:
                    source = str(value[0])
                    stack.append(source)
                    if current not in self.blocking.setdefault(source, set()):
                        self.blocking[source].add(current)
                        self.pending[current] += 1

    def _output(self, node_id: str) -> bool:
        return is_output(self.graph[node_id]["class_type"])

    def pick(self) -> str | None:
        ready = [n for n, count in self.pending.items() if count == 0]
        if not ready:
            return None
        for depth in range(3):  # an output first, then what an output waits for, then what that waits for
            for node_id in ready:
                if self._leads_to_output(node_id, depth):
                    return node_id
        return ready[0]

    def _leads_to_output(self, node_id: str, depth: int) -> bool:
        if depth == 0:
            return self._output(node_id)
        return any(self._leads_to_output(blocked, depth - 1) for blocked in self.blocking.get(node_id, set()))

    def complete(self, node_id: str) -> None:
        del self.pending[node_id]
        for blocked in self.blocking.get(node_id, set()):
            if blocked in self.pending:
                self.pending[blocked] -= 1


__all__ = ["Executor", "Interrupted", "NodeFailure", "Prompt", "return_types"]
