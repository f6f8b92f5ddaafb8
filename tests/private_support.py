"""Shared by the private-results tests: a backend whose progress carries a preview (what would leak the image)."""

from __future__ import annotations

from dataclasses import dataclass

from bot.models import GenerationRequest, GenerationResult, Progress
from bot.ports import ProgressCallback
from tests.fakes import FakeBackend, png


@dataclass
class PreviewBackend(FakeBackend):
    """Sends a progress with a preview image first, then (held until `release`) the result."""

    async def generate(
        self, job_id: str, request: GenerationRequest, source: bytes | None, on_progress: ProgressCallback
    ) -> GenerationResult:
        on_progress(Progress(fraction=0.25, step=1, steps=4, preview=png(64, 64, (10, 10, 200))))
        return await super().generate(job_id, request, source, on_progress)
