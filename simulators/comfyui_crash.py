"""A ComfyUI process that dies running a prompt (a CUDA fault, the OOM killer) and is restarted at once by its
supervisor: its sockets close, and its queue and history, which live in memory, are gone."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from simulators.comfyui import ComfyUISimulator
    from simulators.comfyui_exec import Prompt


def crashes(texts: list[str], prompt: Prompt) -> bool:
    """Whether any of `texts` is in the prompt's graph (in its positive text, say)."""
    graph = json.dumps(prompt.graph)
    return any(text in graph for text in texts)


async def die(sim: ComfyUISimulator, prompt: Prompt) -> None:
    """The prompt started (its client saw execution_start), then the process went down and came back empty."""
    if prompt.client_id is not None:
        await sim.executor.send("execution_start", {"prompt_id": prompt.prompt_id}, prompt.client_id)
    sim.crashes += 1
    await sim.drop_sockets()
    async with sim._queued:  # the simulator's own state, which a restart empties
        sim._heap.clear()
        sim.history.clear()
        sim.running = None
