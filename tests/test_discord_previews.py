"""Issue 13 item 5 on Discord: a progress edit without a preview keeps the preview already shown."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from bot.models import GenerationRequest, GenerationResult, Progress
from bot.ports import ProgressCallback
from simulators.discord import DiscordSimulator
from simulators.discord_events import slash
from simulators.discord_harness import BotProcess
from tests.conftest import make_settings
from tests.discord_support import discord_sim  # noqa: F401 (the `sim` fixture)
from tests.fakes import FakeBackend, png

pytestmark = pytest.mark.discord


@dataclass
class PreviewThenPlainBackend(FakeBackend):
    """One progress with a preview, then (when the test says) one without, as a backend between previews sends."""

    second: asyncio.Event = field(default_factory=asyncio.Event)

    async def generate(
        self, job_id: str, request: GenerationRequest, source: bytes | None, on_progress: ProgressCallback
    ) -> GenerationResult:
        on_progress(Progress(fraction=0.25, step=1, steps=4, preview=png(64, 64, (10, 10, 200))))
        await self.second.wait()
        on_progress(Progress(fraction=0.5, step=2, steps=4))
        await self.release.wait()
        return await super().generate(job_id, request, source, on_progress)


async def test_a_progress_edit_without_preview_keeps_the_picture(sim: DiscordSimulator, tmp_path: Path) -> None:
    backend = PreviewThenPlainBackend()
    process = await BotProcess.start(make_settings(tmp_path / "data"), [backend], sim)
    try:
        interaction = await slash(sim, "imagine", {"prompt": "a red fox"})
        interaction_id = interaction.id

        def status() -> object:
            response_id = sim.state.interactions[interaction_id].response_id
            return sim.state.messages.get(response_id) if response_id else None

        message = await sim.state.wait_until(status)
        job_id = message.custom_ids()[0][0].split(":")[1]
        await sim.state.wait_until(lambda: "1/4" in message.content and len(message.files) == 1)
        backend.second.set()
        await sim.state.wait_until(lambda: "2/4" in message.content)
        assert [name for name, _ in message.files] == [f"{job_id}-preview.jpg"], "the preview stays until a newer one"
        backend.release.set()
        async with asyncio.timeout(10):
            await process.app.engine.finished_event(job_id).wait()
        await sim.state.wait_until(lambda: f"reroll:{job_id}" in str(message.custom_ids()))
        assert len(message.files) == 1 and not message.files[0][0].endswith("-preview.jpg")
    finally:
        await process.stop()
