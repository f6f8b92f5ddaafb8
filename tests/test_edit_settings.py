"""/settings applied to /edit, through the real python-telegram-bot and the real discord.py: the saved negative,
steps and aspect ratio fill what the command leaves out, its own options win, the saved preset is used only
when it can edit (else the server's edit default, with no error), and a saved aspect or step count the edit
preset does not offer falls back to the edit's own default (the image's shape, the preset's steps)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from bot.models import GenerationRequest
from simulators.discord import DiscordSimulator
from simulators.discord_events import slash
from simulators.discord_harness import BotProcess
from simulators.telegram_updates import AlbumItem, send_album
from tests.conftest import make_settings
from tests.discord_support import discord_sim  # noqa: F401 (the `sim` fixture)
from tests.edit_support import FakeEditor, edit_overrides
from tests.fakes import FakeBackend, png
from tests.test_discord_flow import response
from tests.test_telegram_support import GROUP, PRIVATE, Bench, bench

__all__ = ["bench"]
RED = (220, 30, 30)


async def setting(bench: Bench, chat_id: int, user_id: int, text: str, shown: str) -> None:
    """Send a /settings command and wait for the panel (or refusal) that shows `shown`."""
    before = max((m.message_id for m in bench.sim.visible(chat_id)), default=0)
    await bench.sim.send_text(chat_id, user_id, text)
    await bench.sim.wait_for(
        lambda: any(m.message_id > before and shown in (m.text or "") for m in bench.sim.visible(chat_id))
    )


async def edited(bench: Bench, editor: FakeEditor, chat_id: int, user_id: int, text: str) -> GenerationRequest:
    """Reply `text` to a fresh 96x64 photo (a 3:2 picture) and return the edit the backend was asked for."""
    photo = await bench.sim.send_photo(chat_id, user_id, png(96, 64, RED))
    sent = await bench.sim.send_text(chat_id, user_id, text, photo.message_id)
    job_id = await bench.job_from(chat_id, sent.message_id)
    await bench.finished(job_id)
    return next(request for job, request, _ in editor.edits if job == job_id)


@pytest.mark.telegram
async def test_telegram_edit_uses_saved_settings_where_they_fit(bench: Bench) -> None:
    editor = FakeEditor()
    bench.overrides = edit_overrides()
    bench.more_backends = lambda: [editor]
    await bench.open()
    for text, shown in (
        ("/settings preset kontext", "Preset: kontext"),
        ("/settings aspect 2:3", "Aspect ratio: 2:3"),
        ("/settings steps 6", "Steps: 6"),
        ("/settings negative blurry hands", "Negative prompt: blurry hands"),
    ):
        await setting(bench, PRIVATE, PRIVATE, text, shown)

    saved = await edited(bench, editor, PRIVATE, PRIVATE, "/edit make it night")
    assert saved.preset == "kontext" and saved.steps == 6 and saved.width < saved.height, saved
    assert "blurry hands" in saved.negative_prompt

    own_options = '/edit make it day --preset qwen --steps 3 --ar 1:1 --neg "fog"'
    own = await edited(bench, editor, PRIVATE, PRIVATE, own_options)
    assert own.preset == "qwen" and own.steps == 3 and own.width == own.height, own
    assert "fog" in own.negative_prompt and "blurry" not in own.negative_prompt

    # A preset that cannot edit, 16:9 and 30 steps (all fine for /imagine on sd15, none offered by the edit
    # presets): the server's edit default, the picture's shape and the preset's steps, without a refusal.
    await setting(bench, PRIVATE, PRIVATE, "/settings preset sd15", "Preset: sd15")
    await setting(bench, PRIVATE, PRIVATE, "/settings aspect 16:9", "Aspect ratio: 16:9")
    await setting(bench, PRIVATE, PRIVATE, "/settings steps 30", "Steps: 30")
    fallback = await edited(bench, editor, PRIVATE, PRIVATE, "/edit make it snow")
    assert fallback.preset == "qwen" and fallback.steps == 4 and fallback.width > fallback.height, fallback
    assert "blurry hands" in fallback.negative_prompt

    other = await edited(bench, editor, GROUP, 7, "/edit@test_bot make it snow")  # settings are per chat
    assert other.preset == "qwen" and "blurry" not in other.negative_prompt


@pytest.mark.telegram
async def test_telegram_saved_preset_that_takes_fewer_images_is_passed_over(bench: Bench) -> None:
    editor = FakeEditor()
    bench.overrides = edit_overrides()
    bench.config = bench.config.model_copy(update={"album_wait_seconds": 0.3})
    bench.more_backends = lambda: [editor]
    await bench.open()
    await setting(bench, PRIVATE, PRIVATE, "/settings preset kontext", "Preset: kontext")  # one image at most
    album = await send_album(bench.sim, PRIVATE, PRIVATE, [AlbumItem(png(64, 64)), AlbumItem(png(64, 64, RED))])
    sent = await bench.sim.send_text(PRIVATE, PRIVATE, "/edit put image 2 into image 1", album[-1].message_id)
    job_id = await bench.job_from(PRIVATE, sent.message_id)
    await bench.finished(job_id)
    assert [request.preset for job, request, _ in editor.edits if job == job_id] == ["qwen"]


@pytest.mark.discord
async def test_discord_edit_uses_saved_preset_and_negative(sim: DiscordSimulator, tmp_path: Path) -> None:
    editor = FakeEditor()
    settings = make_settings(tmp_path / "data", **edit_overrides())
    process = await BotProcess.start(settings, [FakeBackend(), editor], sim)
    try:
        for key, value, shown in (("preset", "kontext", "Preset: kontext"), ("negative", "blurry", "Negative")):
            sent = await slash(sim, "settings", {"key": key, "value": value})
            panel = await sim.state.wait_until(lambda sent=sent: response(sim, sent.id))
            assert shown in panel.content, panel.content
        run = await slash(sim, "edit", {"instruction": "make it night"}, files={"reference": ("a.png", png(64, 64))})
        status = await sim.state.wait_until(lambda: response(sim, run.id))
        job_id = next(i.split(":")[1] for row in status.custom_ids() for i in row if i.startswith("cancel:"))
        async with asyncio.timeout(10):
            await process.app.engine.finished_event(job_id).wait()
        request = next(request for job, request, _ in editor.edits if job == job_id)
        assert request.preset == "kontext" and "blurry" in request.negative_prompt, request
    finally:
        await process.stop()
