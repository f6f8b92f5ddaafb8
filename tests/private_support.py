"""Shared by the private-results tests: a backend whose progress carries a preview (what would leak the image)."""

from __future__ import annotations

from dataclasses import dataclass

from bot.models import GeneratedImage, GenerationRequest, GenerationResult, Progress
from bot.ports import ProgressCallback
from tests.fakes import FakeBackend, png


@dataclass
class PreviewBackend(FakeBackend):
    """Sends one progress with a preview image (25%), then, once released when `hold`, the result."""

    async def generate(
        self, job_id: str, request: GenerationRequest, source: bytes | None, on_progress: ProgressCallback
    ) -> GenerationResult:
        self.calls.append((job_id, request))
        self.started.set()
        on_progress(Progress(fraction=0.25, step=1, steps=4, preview=png(64, 64, (10, 10, 200))))
        if self.hold:
            await self.release.wait()
        images = [
            GeneratedImage(data=png(request.width // 8, request.height // 8), seed=request.seed + i)
            for i in range(request.count)
        ]
        return GenerationResult(images=images)
