"""A fake backend whose jobs each wait for their own gate, so a test decides when the line moves."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from bot.models import GenerationRequest, GenerationResult
from bot.ports import ProgressCallback
from tests.fakes import FakeBackend


@dataclass
class GatedBackend(FakeBackend):
    """Each job waits for its own gate (the n-th job for gates[n])."""

    gates: list[asyncio.Event] = field(default_factory=lambda: [asyncio.Event() for _ in range(8)])
    taken: int = 0

    async def generate(
        self, job_id: str, request: GenerationRequest, source: bytes | None, on_progress: ProgressCallback
    ) -> GenerationResult:
        gate = self.gates[self.taken]
        self.taken += 1
        self.started.set()
        await gate.wait()
        return await super().generate(job_id, request, source, on_progress)
