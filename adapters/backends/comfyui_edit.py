"""Edit by instruction on ComfyUI: the edit workflows, their node maps, and a graph for N reference images.

The shipped edit workflows follow ComfyUI's own templates: `flux_kontext_edit` (one reference: LoadImage ->
FluxKontextImageScale -> VAEEncode -> ReferenceLatent -> FluxGuidance -> KSampler) and `qwen_image_edit`
(Qwen-Image-Edit 2509: up to three references into TextEncodeQwenImageEditPlus `image1`..`image3`, with
ModelSamplingAuraFlow and CFGNorm), with the templates' node ids and model files. Both sample an
EmptySD3LatentImage instead of the reference's VAEEncode latent, as the templates' notes suggest for a chosen
size, so the edit comes out at the request's size.
The node map names each reference's LoadImage input `image1`, `image2`, ...; how many it names is how many
references the workflow takes. With fewer references, the unused LoadImage nodes and the links to them are removed
(the encoders' image inputs are optional).
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from adapters.backends.comfyui_graph import Graph, NodeMap, load_workflow, node_map_for
from bot.errors import BackendError, ConfigError

_SAMPLING: NodeMap = {
    "seed": [("31", "seed")],
    "steps": [("31", "steps")],
    "sampler": [("31", "sampler_name")],
    "scheduler": [("31", "scheduler")],
    "width": [("27", "width")],
    "height": [("27", "height")],
}
_KONTEXT: NodeMap = {  # no cfg: Kontext is guidance-distilled, it samples at cfg 1 with FluxGuidance
    **_SAMPLING,
    "prompt": [("6", "text")],
    "guidance": [("35", "guidance")],
    "image1": [("142", "image")],
}
_QWEN: NodeMap = {
    **{
        key: [("3", field) for _, field in targets]
        for key, targets in _SAMPLING.items()
        if key in ("seed", "steps", "sampler", "scheduler")
    },
    "cfg": [("3", "cfg")],
    "width": [("112", "width")],
    "height": [("112", "height")],
    "prompt": [("111", "prompt")],
    "negative": [("110", "prompt")],
    "image1": [("78", "image")],
    "image2": [("106", "image")],
    "image3": [("108", "image")],
}
SHIPPED_EDITS: dict[str, NodeMap] = {"flux_kontext_edit": _KONTEXT, "qwen_image_edit": _QWEN}
_REFERENCE = re.compile(r"image(\d+)")


@dataclass(frozen=True)
class EditWorkflow:
    """A backend's configured edit workflow: its name, node map and how many references it takes."""

    name: str
    node_map: NodeMap

    @classmethod
    def configured(cls, name: str, node_map: dict[str, Any] | None, backend: str) -> EditWorkflow:
        """From the backend's `edit_workflow` / `edit_node_map`; a map without `image1` is a config error."""
        if node_map is None and Path(name).stem in SHIPPED_EDITS:
            edit = cls(name, SHIPPED_EDITS[Path(name).stem])
        else:
            try:
                edit = cls(name, node_map_for(name, node_map))
            except BackendError as exc:
                raise ConfigError(f"backends.{backend}.edit_node_map: {exc.user_message}") from exc
        if edit.max_references == 0:
            raise ConfigError(f"backends.{backend}.edit_node_map must map image1 (the first reference's LoadImage)")
        return edit

    @property
    def max_references(self) -> int:
        """image1..imageN, counted without gaps."""
        numbers = {int(m.group(1)) for key in self.node_map if (m := _REFERENCE.fullmatch(key))}
        count = 0
        while count + 1 in numbers:
            count += 1
        return count

    def check(self, references: int) -> None:
        """Refuse, before anything is uploaded, more references than the workflow takes (or none)."""
        if references < 1:
            raise BackendError.of("backend.source_missing")
        if references > self.max_references:
            raise BackendError.of(
                "backend.comfy_too_many_references", count=references, most=self.max_references, workflow=self.name
            )

    def template(self, references: int) -> Graph:
        """The workflow for this many references: the unused references' nodes and links to them removed."""
        graph = load_workflow(self.name)
        unused = {
            node
            for number in range(references + 1, self.max_references + 1)
            for node, _ in self.node_map.get(f"image{number}", [])
        }
        return without(graph, unused)


def without(graph: Graph, removed: set[str]) -> Graph:
    """A copy of the graph without these nodes and without the inputs that linked to them."""
    pruned = {node_id: copy.deepcopy(node) for node_id, node in graph.items() if node_id not in removed}
    for node in pruned.values():
        inputs = node.get("inputs", {})
        for name in [n for n, v in inputs.items() if isinstance(v, list) and len(v) == 2 and str(v[0]) in removed]:
            del inputs[name]
    return pruned


def reference_values(names: list[str]) -> dict[str, Any]:
    """The node-map values of the uploaded references: image1, image2, ..."""
    return {f"image{index}": name for index, name in enumerate(names, start=1)}
