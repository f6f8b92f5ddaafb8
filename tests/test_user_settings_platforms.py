"""/settings through the real python-telegram-bot (inline keyboard, per chat) and the real discord.py
(slash command with a choice, ephemeral answers, buttons), applied by the next /imagine."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from simulators.discord import DiscordSimulator
from simulators.discord_events import click, slash
from simulators.discord_harness import BotProcess
from tests.conftest import make_settings
from tests.discord_support import discord_sim  # noqa: F401 (the `sim` fixture)
from tests.fakes import FakeBackend
from tests.test_discord_flow import finished, response
from tests.test_telegram_support import GROUP, PRIVATE, Bench, bench

__all__ = ["bench"]


@pytest.mark.telegram
async def test_telegram_settings_with_buttons_apply_per_chat(bench: Bench) -> None:
    await bench.open()
    await bench.sim.send_text(GROUP, 5, "/settings@test_bot preset sd15")
    await bench.sim.wait_for(lambda: any("Preset: sd15" in (m.text or "") for m in bench.sim.visible(GROUP)))
    panel = next(m for m in bench.sim.visible(GROUP) if "Preset: sd15" in (m.text or ""))
    assert "set:aspect:3" in panel.buttons and "set:language:1" in panel.buttons, panel.buttons
    await bench.sim.press(GROUP, 5, panel.message_id, "set:aspect:3")  # sd15's fourth ratio: 16:9
    await bench.sim.wait_for(lambda: any("Aspect ratio: 16:9" in (m.text or "") for m in bench.sim.visible(GROUP)))
    await bench.sim.send_text(GROUP, 5, "/settings@test_bot steps 99")
    await bench.sim.wait_for(
        lambda: any("allows 1 to 50 steps (got '99')" in (m.text or "") for m in bench.sim.visible(GROUP))
    )

    job_id = await bench.imagine(GROUP, 5, "/imagine@test_bot a heron")
    await bench.finished(job_id)
    request = next(request for job, request in bench.backend.calls if job == job_id)
    assert request.preset == "sd15" and request.width > request.height
    other = await bench.imagine(GROUP, 6, "/imagine@test_bot a heron")  # another user: the server's default
    alone = await bench.imagine(PRIVATE, PRIVATE, "/imagine a heron")  # a private chat is another place
    await bench.finished(other)
    await bench.finished(alone)
    presets = {job: request.preset for job, request in bench.backend.calls}
    assert presets[other] == "sdxl" and presets[alone] == "sdxl"


@pytest.mark.discord
async def test_discord_settings_slash_and_buttons_apply_to_imagine(sim: DiscordSimulator, tmp_path: Path) -> None:
    backend = FakeBackend()
    process = await BotProcess.start(make_settings(tmp_path / "data"), [backend], sim)
    try:
        shown = await slash(sim, "settings", {"key": "preset", "value": "sd15"})
        panel = await sim.state.wait_until(lambda: response(sim, shown.id))
        assert "Preset: sd15" in panel.content and panel.ephemeral
        ids = [custom_id for row in panel.custom_ids() for custom_id in row]
        assert "set:aspect:3" in ids and "set:language:1" in ids, ids
        pressed = await click(sim, panel.id, "set:aspect:3")
        answer = await sim.state.wait_until(lambda: response(sim, pressed.id))
        assert "Aspect ratio: 16:9" in answer.content and answer.ephemeral
        bad = await slash(sim, "settings", {"key": "aspect", "value": "4:3"})
        refused = await sim.state.wait_until(lambda: response(sim, bad.id))
        assert "'4:3' is not offered by preset 'sd15'" in refused.content

        run = await slash(sim, "imagine", {"prompt": "a heron"})
        job_id, _ = await finished(process, sim, run.id)
        async with asyncio.timeout(10):
            await process.app.engine.finished_event(job_id).wait()
        request = next(request for job, request in backend.calls if job == job_id)
        assert request.preset == "sd15" and request.width > request.height
    finally:
        await process.stop()
