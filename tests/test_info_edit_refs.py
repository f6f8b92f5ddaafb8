"""The Info button of an edit says which images it edited: the attached ones (how many, their sizes) or the
finished job's image it was made from, through the real python-telegram-bot and the real discord.py."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from simulators.discord import DiscordSimulator
from simulators.discord_events import click, slash
from simulators.discord_harness import BotProcess
from simulators.discord_state import SimInteraction, SimMessage
from tests.conftest import make_settings
from tests.discord_support import discord_sim  # noqa: F401 (the `sim` fixture)
from tests.edit_support import FakeEditor, edit_overrides
from tests.fakes import FakeBackend, png
from tests.test_discord_flow import response
from tests.test_telegram_support import PRIVATE, Bench, bench, keyboard_message

__all__ = ["bench"]


async def info_text(bench: Bench, job_id: str) -> str:
    """Press the result's Info button; the answer: a toast when it is short, else a message."""
    result = keyboard_message(bench, PRIVATE, job_id)
    before = max(m.message_id for m in bench.sim.visible(PRIVATE))
    press = await bench.sim.press(PRIVATE, PRIVATE, result.message_id, f"info:{job_id}")
    found: list[str] = []

    def answered() -> bool:
        toast = str(bench.sim.callback_answers.get(press, {}).get("text") or "")
        texts = [toast, *(m.text or "" for m in bench.sim.visible(PRIVATE) if m.message_id > before)]
        found.extend(text for text in texts if f"Job {job_id}" in text)
        return bool(found)

    await bench.sim.wait_for(answered)
    return found[0]


@pytest.mark.telegram
async def test_telegram_info_of_an_edit_names_its_attached_image(bench: Bench) -> None:
    bench.overrides = edit_overrides()
    bench.more_backends = lambda: [FakeEditor()]
    await bench.open()
    photo = await bench.sim.send_photo(PRIVATE, PRIVATE, png(96, 64))
    sent = await bench.sim.send_text(PRIVATE, PRIVATE, "/edit make it night", photo.message_id)
    job_id = await bench.job_from(PRIVATE, sent.message_id)
    await bench.finished(job_id)
    await bench.sim.wait_for(lambda: any(f"info:{job_id}" in m.buttons for m in bench.sim.visible(PRIVATE)))
    assert "Edited 1 attached image (96×64)" in await info_text(bench, job_id)


async def finished(process: BotProcess, sim: DiscordSimulator, run: SimInteraction) -> tuple[str, SimMessage]:
    status = await sim.state.wait_until(lambda: response(sim, run.id))
    job_id = next(i.split(":")[1] for row in status.custom_ids() for i in row if i.startswith("cancel:"))
    async with asyncio.timeout(10):
        await process.app.engine.finished_event(job_id).wait()
    await sim.state.wait_until(lambda: any(f"info:{job_id}" in row for row in status.custom_ids()) or None)
    return job_id, status


async def info(sim: DiscordSimulator, message: SimMessage, job_id: str) -> str:
    pressed = await click(sim, message.id, f"info:{job_id}")
    answer = await sim.state.wait_until(lambda: response(sim, pressed.id))
    return answer.content


@pytest.mark.discord
async def test_discord_info_of_edits_names_their_images(sim: DiscordSimulator, tmp_path: Path) -> None:
    settings = make_settings(tmp_path / "data", **edit_overrides())
    process = await BotProcess.start(settings, [FakeBackend(), FakeEditor()], sim)
    try:
        files = {"reference": ("a.png", png(64, 64)), "reference2": ("b.png", png(96, 64))}
        run = await slash(sim, "edit", {"instruction": "swap them", "preset": "qwen"}, files=files)
        first, message = await finished(process, sim, run)
        assert "Edited 2 attached images (64×64, 96×64)" in await info(sim, message, first)

        again = await slash(sim, "edit", {"instruction": "make it night", "job": first, "image": 1})
        second, message = await finished(process, sim, again)
        text = await info(sim, message, second)
        assert f"Edited image 1 of job {first}" in text and "attached" not in text, text
    finally:
        await process.stop()
