"""Scenario 7: 20 concurrent jobs in one Telegram group and 20 in one Discord channel, limits on."""

from __future__ import annotations

import asyncio
import re
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import SecretStr

from adapters.telegram import create as create_telegram
from bench.harness import StandInBackend, bench_settings
from bot.app import build_app
from bot.config_telegram import TelegramConfig
from bot.models import GeneratedImage, GenerationRequest, GenerationResult, Progress
from bot.ports import Capabilities, ProgressCallback
from simulators.images import encode_png, render_image
from simulators.telegram import TelegramSimulator

TIME_SCALE = 0.02  # the simulators' flood windows, shrunk 50× so the run takes seconds
JOB_ID = re.compile(r"job ([0-9a-f]{12})")
GROUP = -100200


@dataclass
class SteppingBackend(StandInBackend):
    """Ten progress steps of 20 ms, then one small PNG: a stand-in GPU that keeps the chats busy."""

    name: str = "gpu"
    kind: str = "a1111"
    capabilities: Capabilities = field(default_factory=Capabilities)
    image: bytes = field(default_factory=lambda: encode_png(render_image("pressure", 1, 256, 256), "pressure"))

    async def generate(
        self, job_id: str, request: GenerationRequest, source: bytes | None, on_progress: ProgressCallback
    ) -> GenerationResult:
        for step in range(1, 11):
            await asyncio.sleep(0.02)
            on_progress(Progress(fraction=step / 10, step=step, steps=10))
        return GenerationResult(images=[GeneratedImage(data=self.image, seed=request.seed)])


async def telegram(jobs: int) -> dict[str, Any]:
    sim = TelegramSimulator(time_scale=TIME_SCALE)
    await sim.start()
    sim.add_chat(GROUP, title="pressure")
    config = TelegramConfig(
        enabled=True,
        api_base_url=sim.api_base_url,
        file_base_url=sim.file_base_url,
        group_progress_interval_seconds=3.0 * TIME_SCALE,
        poll_timeout_seconds=1,
        flood_time_scale=TIME_SCALE * 1.5,  # the bot's windows, with room for loopback jitter
    )
    with tempfile.TemporaryDirectory(prefix="imagebridge-pressure-") as data:
        settings = bench_settings(Path(data))
        platform = create_telegram(settings, SecretStr(sim.token), config)
        app = await build_app(settings, [platform.outbound], backends=[SteppingBackend()])
        await app.start()
        await platform.start(app.services)
        try:
            await asyncio.gather(
                *(sim.send_text(GROUP, 1000 + i, f"/imagine@test_bot pressure {i}") for i in range(jobs))
            )
            ids: set[str] = set()

            def queued() -> bool:
                for message in sim.visible(GROUP):
                    ids.update(JOB_ID.findall(message.text or message.caption or ""))
                return len(ids) >= jobs

            await sim.wait_for(queued, 120)
            delivered = 0
            for job_id in ids:
                try:
                    async with asyncio.timeout(300):
                        await app.engine.finished_event(job_id).wait()
                    delivered += 1
                except TimeoutError:
                    pass
            photos = sum(1 for m in sim.visible(GROUP) if m.photo is not None)
        finally:
            await platform.stop()
            await app.stop()
            await sim.stop()
    return {
        "jobs": jobs,
        "delivered": delivered,
        "photos_in_chat": photos,
        "platform_429": sim.flood.refused,
        "by_method": dict(sim.flood.refused_by_method),
        "lost": jobs - min(delivered, photos),
    }


async def discord(jobs: int) -> dict[str, Any]:
    from simulators.discord import DiscordSimulator
    from simulators.discord_events import slash
    from simulators.discord_harness import BotProcess, patched

    sim = DiscordSimulator(time_scale=0.05)
    await sim.start()
    with patched(sim.url), tempfile.TemporaryDirectory(prefix="imagebridge-pressure-") as data:
        process = await BotProcess.start(
            bench_settings(Path(data)), [SteppingBackend()], sim, progress_interval_seconds=1.5 * 0.05
        )
        try:
            interactions = [await slash(sim, "imagine", {"prompt": f"pressure {i}"}) for i in range(jobs)]

            def answered() -> bool:
                return all(sim.state.interactions[i.id].response_id for i in interactions)

            await sim.state.wait_until(answered, 60)
            ids = []
            for interaction in interactions:
                message = sim.state.messages[sim.state.interactions[interaction.id].response_id or ""]
                ids.append(message.custom_ids()[0][0].split(":")[1])
            delivered = 0
            for job_id in ids:
                try:
                    async with asyncio.timeout(300):
                        await process.app.engine.finished_event(job_id).wait()
                    delivered += 1
                except TimeoutError:
                    pass
            with_images = sum(1 for m in sim.state.messages.values() if m.files)
        finally:
            await process.stop()
            await sim.stop()
    limited = sum(1 for r in sim.state.requests if r.status == 429)
    return {
        "jobs": jobs,
        "delivered": delivered,
        "messages_with_images": with_images,
        "platform_429": limited,
        "lost": jobs - min(delivered, with_images),
    }


async def platform_pressure(jobs: int) -> dict[str, Any]:
    tg = await telegram(jobs)
    dc = await discord(jobs)
    return {
        "telegram": tg,
        "discord": dc,
        "platform_429": tg["platform_429"] + dc["platform_429"],
        "lost": tg["lost"] + dc["lost"],
    }
