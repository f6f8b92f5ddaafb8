"""Hand-written fakes that record what happened (no MagicMock)."""

from __future__ import annotations

import asyncio
import io
from dataclasses import dataclass, field

from PIL import Image

from bot.errors import BackendError
from bot.models import GeneratedImage, GenerationRequest, GenerationResult, Job, Progress
from bot.ports import BackendHealth, Capabilities, ProgressCallback
from bot.replies import Reply


def png(width: int = 64, height: int = 64, colour: tuple[int, int, int] = (200, 80, 40)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), colour).save(out, format="PNG")
    return out.getvalue()


@dataclass
class FakeBackend:
    """A backend whose jobs can be held, failed or blackened on demand."""

    name: str = "fake"
    kind: str = "a1111"
    capabilities: Capabilities = field(default_factory=lambda: Capabilities(variations=True))
    hold: bool = False
    black: bool = False
    failures: list[BackendError] = field(default_factory=list)
    calls: list[tuple[str, GenerationRequest]] = field(default_factory=list)
    started: asyncio.Event = field(default_factory=asyncio.Event)
    release: asyncio.Event = field(default_factory=asyncio.Event)
    interrupted: list[str] = field(default_factory=list)
    healthy: bool = True

    async def generate(
        self, job_id: str, request: GenerationRequest, source: bytes | None, on_progress: ProgressCallback
    ) -> GenerationResult:
        self.calls.append((job_id, request))
        self.started.set()
        on_progress(Progress(fraction=0.5, step=1, steps=2))
        if self.hold:
            await self.release.wait()
        if self.failures:
            raise self.failures.pop(0)
        colour = (0, 0, 0) if self.black else (200, 80, 40)
        images = [
            GeneratedImage(data=png(request.width // 8, request.height // 8, colour), seed=request.seed + i)
            for i in range(request.count)
        ]
        return GenerationResult(images=images, interrupted=job_id in self.interrupted)

    async def interrupt(self, job_id: str) -> None:
        self.interrupted.append(job_id)
        self.release.set()

    async def health(self) -> BackendHealth:
        return BackendHealth(ok=self.healthy, models=["x"], loaded_model=None)

    async def aclose(self) -> None:
        return None


@dataclass
class RecordingOutbound:
    """An Outbound that remembers every status edit and delivery."""

    platform: str = "console"
    statuses: list[tuple[str, Reply]] = field(default_factory=list)
    deliveries: list[tuple[str, Reply]] = field(default_factory=list)
    fail_deliveries: int = 0
    delivered: asyncio.Event = field(default_factory=asyncio.Event)
    attempted: asyncio.Event = field(default_factory=asyncio.Event)

    def min_interval(self, job: Job) -> float:
        return 0.0

    async def update_status(self, job: Job, reply: Reply) -> None:
        self.statuses.append((job.id, reply))

    async def deliver(self, job: Job, reply: Reply) -> bool:
        self.attempted.set()
        if self.fail_deliveries:
            self.fail_deliveries -= 1
            return False
        self.deliveries.append((job.id, reply))
        self.delivered.set()
        return True

    def delivered_ids(self) -> list[str]:
        return [job_id for job_id, _ in self.deliveries]
