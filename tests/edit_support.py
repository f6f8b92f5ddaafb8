"""Shared pieces of the /edit tests: a recording edit backend, edit presets and the config that names them."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from bot.models import GeneratedImage, GenerationRequest, GenerationResult, Progress
from bot.ports import Capabilities, ProgressCallback
from tests.fakes import FakeBackend, png


@dataclass
class FakeEditor(FakeBackend):
    """A backend that edits (like ComfyUI with qwen_image_edit): records each edit with its reference bytes."""

    name: str = "editor"
    kind: str = "comfyui"
    capabilities: Capabilities = field(
        default_factory=lambda: Capabilities(upscale=False, edits=True, max_references=3, variations=True)
    )
    edits: list[tuple[str, GenerationRequest, list[bytes]]] = field(default_factory=list)

    async def edit(
        self, job_id: str, request: GenerationRequest, sources: list[bytes], on_progress: ProgressCallback
    ) -> GenerationResult:
        self.edits.append((job_id, request, list(sources)))
        self.started.set()
        on_progress(Progress(fraction=0.5, step=1, steps=2))
        if self.hold:
            await self.release.wait()
        images = [GeneratedImage(data=png(32, 32, (10, 120, 200)), seed=request.seed + i) for i in range(request.count)]
        return GenerationResult(images=images)


def edit_presets(backend: str = "editor") -> dict[str, Any]:
    """`qwen` (1–3 references) and `kontext` (1) on the named backend."""
    common: dict[str, Any] = {
        "backend": backend,
        "sampler": "Euler",
        "scheduler": "simple",
        "steps": 4,
        "max_steps": 8,
        "cfg_scale": 2.5,
        "base_resolution": 512,
        "aspect_ratios": ["1:1", "3:2", "2:3"],
        "max_images": 2,
    }
    return {
        "qwen": {**common, "checkpoint": "qwen_image_edit_2509_fp8_e4m3fn.safetensors", "max_references": 3},
        "kontext": {**common, "checkpoint": "flux1-dev-kontext_fp8_scaled.safetensors", "max_references": 1},
    }


def edit_overrides(url: str = "http://127.0.0.1:9", backend: str = "editor", **extra: Any) -> dict[str, Any]:
    """Settings overrides: the default Forge backend, a ComfyUI edit backend and the edit presets."""
    backends = {
        "local": {"kind": "forge", "url": "http://127.0.0.1:9"},
        backend: {"kind": "comfyui", "url": url, "edit_workflow": "qwen_image_edit"},
    }
    return {"backends": backends, "presets": edit_presets(backend), **extra}
