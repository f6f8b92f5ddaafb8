"""The LoRA picker and wildcards through the real discord.py (autocomplete: interaction type 4 answered with
type 8) and the real python-telegram-bot Application (/loras with an inline keyboard)."""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from bot.models import JobState
from bot.pool import check
from bot.ports import BackendHealth, Inventory
from simulators.discord import DiscordSimulator
from simulators.discord_events import click, slash
from simulators.discord_harness import BotProcess
from tests.conftest import make_settings
from tests.discord_support import discord_sim  # noqa: F401 (the `sim` fixture)
from tests.fakes import FakeBackend
from tests.test_discord_flow import response
from tests.test_telegram_support import PRIVATE, Bench, bench

__all__ = ["bench"]

LORAS: dict[str, Any] = {
    "detail": {"file": "add-detail-xl", "weight": 0.6, "triggers": ["detailed"]},
    "deep": {"file": "deep-focus"},
    "gone": {"file": "not-installed"},  # the backend does not have it: never offered
    **{f"style{i:02d}": {"file": f"style-{i}"} for i in range(30)},  # more than Discord's 25 choices
}
PRESETS = {"sdxl": {"loras": LORAS}}


@dataclass
class StockedBackend(FakeBackend):
    """A fake backend that lists its LoRAs, as A1111's /sdapi/v1/loras does."""

    async def health(self) -> BackendHealth:
        loras = frozenset({"add-detail-xl", "deep-focus", *(f"style-{i}" for i in range(30))})
        return BackendHealth(ok=True, models=["x"], inventory=Inventory(loras=loras))


@pytest.mark.discord
async def test_discord_autocompletes_the_presets_loras(sim: DiscordSimulator, tmp_path: Path) -> None:
    process = await BotProcess.start(make_settings(tmp_path / "data", presets=PRESETS), [StockedBackend()], sim)
    try:
        for worker in process.app.engine.workers:
            await check(worker)
        ask = await slash(sim, "imagine", {"prompt": "x", "preset": "sdxl", "lora": "de"}, autocomplete="lora")
        choices = await sim.state.wait_until(lambda: sim.state.interactions[ask.id].choices)
        assert [choice["value"] for choice in choices] == ["detail", "deep"]
        typed = {"prompt": "x", "preset": "sdxl", "lora": "detail:0.5, st"}
        ask = await slash(sim, "imagine", typed, autocomplete="lora")
        choices = await sim.state.wait_until(lambda: sim.state.interactions[ask.id].choices)
        assert len(choices) == 25 and choices[0]["value"] == "detail:0.5, style00"  # Discord's bound, kept
        assert not any("not-installed" in c["value"] or "gone" in c["value"] for c in choices)

        run = await slash(sim, "imagine", {"prompt": "a {red|blue} owl", "preset": "sdxl", "lora": "detail"})
        message = await sim.state.wait_until(lambda: response(sim, run.id))
        assert "2 jobs" in message.content
        backend = process.app.engine.workers[0].backend
        assert isinstance(backend, StockedBackend)
        async with asyncio.timeout(10):
            for job_id in set(re.findall(r"\b[0-9a-f]{12}\b", message.content)):
                await process.app.engine.finished_event(job_id).wait()
        prompts = sorted(request.prompt for _, request in backend.calls)
        assert prompts == [
            "a blue owl, detailed, <lora:add-detail-xl:0.6>, highly detailed",
            "a red owl, detailed, <lora:add-detail-xl:0.6>, highly detailed",
        ]

        listing = await slash(sim, "loras", {"preset": "sdxl"})
        shown = await sim.state.wait_until(lambda: response(sim, listing.id))
        assert "detail — weight 0.6" in shown.content and "gone" not in shown.content
        ids = [custom_id for row in shown.custom_ids() for custom_id in row]
        assert "lora:sdxl:0" in ids and "lora:sdxl:2" not in ids
        pressed = await click(sim, shown.id, "lora:sdxl:0")
        answer = await sim.state.wait_until(lambda: response(sim, pressed.id))
        assert "--lora detail:0.6" in answer.content and answer.ephemeral
    finally:
        await process.stop()


@pytest.mark.telegram
async def test_telegram_loras_offers_buttons_that_give_the_option_text(bench: Bench) -> None:
    bench.overrides = {"presets": PRESETS}
    bench.backend = StockedBackend()
    await bench.open()
    await bench.sim.send_text(PRIVATE, PRIVATE, "/loras sdxl")
    await bench.sim.wait_for(lambda: any("LoRAs of preset sdxl" in (m.text or "") for m in bench.sim.visible(PRIVATE)))
    listing = next(m for m in bench.sim.visible(PRIVATE) if "LoRAs of preset sdxl" in (m.text or ""))
    assert "lora:sdxl:0" in listing.buttons and "lora:sdxl:2" not in listing.buttons
    query = await bench.sim.press(PRIVATE, PRIVATE, listing.message_id, "lora:sdxl:1")
    await bench.sim.wait_for(lambda: query in bench.sim.callback_answers)
    assert "--lora deep:0.8" in str(bench.sim.callback_answers[query]["text"])

    job_id = await bench.imagine(PRIVATE, PRIVATE, "/imagine an owl --preset sdxl --lora detail:0.9")
    assert bench.backend.calls[-1][0] == job_id
    assert "<lora:add-detail-xl:0.9>" in bench.backend.calls[-1][1].prompt
    await bench.sim.send_text(PRIVATE, PRIVATE, "/imagine an owl --preset sdxl --lora gone")
    await bench.sim.wait_for(lambda: any("not-installed" in (m.text or "") for m in bench.sim.visible(PRIVATE)))


@pytest.mark.telegram
async def test_telegram_wildcards_deliver_every_job_and_info_tells_the_choice(bench: Bench) -> None:
    bench.overrides = {"wildcards": {"mood": ["stormy"]}}
    await bench.open()
    await bench.sim.send_text(PRIVATE, PRIVATE, "/imagine a {red|blue} kite, __mood__ sky")
    await bench.sim.wait_for(lambda: any("2 jobs" in (m.text or "") for m in bench.sim.visible(PRIVATE)))
    listing = next(m for m in bench.sim.visible(PRIVATE) if "2 jobs" in (m.text or ""))
    job_ids = list(dict.fromkeys(re.findall(r"\b[0-9a-f]{12}\b", listing.text or "")))
    assert len(job_ids) == 2
    for job_id in job_ids:
        await bench.finished(job_id)
    prompts = {job: request.user_prompt for job, request in bench.backend.calls}
    assert sorted(prompts.values()) == ["a blue kite, stormy sky", "a red kite, stormy sky"]
    for job_id in job_ids:  # each job's result reaches the chat with its own buttons
        await bench.sim.wait_for(
            lambda job_id=job_id: any(f"info:{job_id}" in m.buttons for m in bench.sim.visible(PRIVATE))
        )
    blue = next(job for job, prompt in prompts.items() if "blue" in prompt)
    result = next(m for m in bench.sim.visible(PRIVATE) if f"info:{blue}" in m.buttons)
    await bench.sim.press(PRIVATE, PRIVATE, result.message_id, f"info:{blue}")
    await bench.sim.wait_for(
        lambda: any(
            "Wildcards: blue, __mood__=stormy (prompt 2 of 2)" in (m.text or "") for m in bench.sim.visible(PRIVATE)
        )
    )


@pytest.mark.telegram
async def test_telegram_refuses_an_expansion_over_the_quota_and_charges_nothing(bench: Bench) -> None:
    bench.overrides = {"quota": {"enabled": True, "user_daily": 20.0}}
    await bench.open()
    await bench.sim.send_text(PRIVATE, PRIVATE, "/imagine a {red|blue|green|pink} kite --preset sd15")
    await bench.sim.wait_for(lambda: any("quota" in (m.text or "").lower() for m in bench.sim.visible(PRIVATE)))
    assert bench.backend.calls == []
    assert bench.app is not None and bench.app.services is not None
    assert await bench.app.services.store.in_states(list(JobState)) == []  # nothing stored, so nothing reserved
