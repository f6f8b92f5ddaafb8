"""Restarts, token expiry, 429 storms, oversize images and permissions, with the real discord.py."""

from __future__ import annotations

import asyncio
import io
import os
from pathlib import Path

import pytest
from PIL import Image

from bot.models import JobState
from simulators.discord import DiscordSimulator
from simulators.discord_events import click, place, slash
from simulators.discord_harness import BotProcess
from tests.conftest import make_settings
from tests.discord_support import discord_sim  # noqa: F401 (the `sim` fixture)
from tests.fakes import FakeBackend
from tests.test_discord_flow import finished, response

pytestmark = pytest.mark.discord


async def test_buttons_work_after_a_restart(sim: DiscordSimulator, tmp_path: Path) -> None:
    settings = make_settings(tmp_path / "data")
    first = await BotProcess.start(settings, [FakeBackend()], sim)
    interaction = await slash(sim, "imagine", {"prompt": "old job"})
    job_id, message = await finished(first, sim, interaction.id)
    await first.stop()
    second = await BotProcess.start(settings, [FakeBackend()], sim)
    try:
        press = await click(sim, message.id, f"reroll:{job_id}")
        new_id, new_message = await finished(second, sim, press.id)
        job = await second.app.services.store.get(new_id)
        assert job is not None and job.state is JobState.SUCCEEDED and len(new_message.files) == 1
    finally:
        await second.stop()


async def test_expired_token_result_delivered_with_the_bot_token(sim: DiscordSimulator, tmp_path: Path) -> None:
    backend = FakeBackend(hold=True)
    process = await BotProcess.start(make_settings(tmp_path / "data"), [backend], sim)
    try:
        interaction = await slash(sim, "imagine", {"prompt": "slow one"})
        message = await sim.state.wait_until(lambda: response(sim, interaction.id))
        sim.state.advance(16 * 60)
        backend.release.set()
        job_id = message.custom_ids()[0][0].split(":")[1]
        async with asyncio.timeout(10):
            await process.app.engine.finished_event(job_id).wait()
        assert len(message.files) == 1 and f"reroll:{job_id}" in message.custom_ids()[0]
        assert any(r.status == 401 for r in sim.state.requests_to("/webhooks/"))
        assert sim.state.requests_to(f"/channels/700/messages/{message.id}", "PATCH")[-1].status == 200
    finally:
        await process.stop()


async def test_429_storm_slows_edits_but_loses_nothing(sim: DiscordSimulator, tmp_path: Path) -> None:
    process = await BotProcess.start(make_settings(tmp_path / "data"), [FakeBackend()], sim)
    try:
        sim.state.retry_after = 0.01
        sim.state.rate_limit_left = 8
        interaction = await slash(sim, "imagine", {"prompt": "storm", "count": 3})
        _, message = await finished(process, sim, interaction.id)
        assert len(message.files) == 3 and sim.state.rate_limit_left == 0
        assert sum(r.status == 429 for r in sim.state.requests) >= 5
    finally:
        await process.stop()


class HugeBackend(FakeBackend):
    async def generate(self, job_id, request, source, on_progress):  # type: ignore[no-untyped-def]
        result = await super().generate(job_id, request, source, on_progress)
        noise = Image.frombytes("RGB", (2200, 2200), os.urandom(2200 * 2200 * 3))
        out = io.BytesIO()
        noise.save(out, format="PNG", compress_level=0)
        result.images[0].data = out.getvalue()
        return result


async def test_oversize_image_is_reencoded_to_fit(sim: DiscordSimulator, tmp_path: Path) -> None:
    process = await BotProcess.start(make_settings(tmp_path / "data"), [HugeBackend()], sim)
    try:
        interaction = await slash(sim, "imagine", {"prompt": "noise"})
        _, message = await finished(process, sim, interaction.id)
        assert len(message.files) == 1 and message.files[0][0].endswith(".jpg")
        assert len(message.files[0][1]) <= 10 * 1024 * 1024 and "re-encoded" in message.content
    finally:
        await process.stop()


async def test_permissions_admin_cancel_and_nsfw(sim: DiscordSimulator, tmp_path: Path) -> None:
    backend = FakeBackend(hold=True)
    settings = make_settings(
        tmp_path / "data",
        presets={"spicy": {"checkpoint": "x", "nsfw": True}},
        access={"bot_admins": ["discord:1"]},
    )
    process = await BotProcess.start(settings, [backend], sim)
    try:
        admin = await slash(sim, "admin", {"action": "pause"})
        refused = await sim.state.wait_until(lambda: response(sim, admin.id))
        assert refused.ephemeral
        allowed = await slash(sim, "admin", {"action": "block"}, where=place(admin=True))
        assert not (await sim.state.wait_until(lambda: response(sim, allowed.id))).content.startswith("Only")
        # Backend health can name internal URLs: a Manage Server admin is refused, the bot's admin sees it.
        server_admin = await slash(sim, "admin", {"action": "backends"}, where=place(admin=True))
        answer = await sim.state.wait_until(lambda: response(sim, server_admin.id))
        assert answer.ephemeral and "bot's own admins" in answer.content and "fake" not in answer.content
        owner = await slash(sim, "admin", {"action": "backends"}, where=place(user="1"))
        assert "fake" in (await sim.state.wait_until(lambda: response(sim, owner.id))).content
        mine = await slash(sim, "imagine", {"prompt": "mine"})
        message = await sim.state.wait_until(lambda: response(sim, mine.id))
        cancel_id = message.custom_ids()[0][0]
        other = await click(sim, message.id, cancel_id, where=place(user="99"))
        answer = await sim.state.wait_until(lambda: response(sim, other.id))
        assert answer.ephemeral and "Only the person" in answer.content
        bad = await slash(sim, "imagine", {"prompt": "x", "preset": "spicy"})
        refusal = await sim.state.wait_until(lambda: response(sim, bad.id))
        assert refusal.ephemeral and "age-restricted" in refusal.content
        backend.release.set()
    finally:
        await process.stop()


async def test_dms_refused_when_not_allowed(sim: DiscordSimulator, tmp_path: Path) -> None:
    settings = make_settings(tmp_path / "data")  # global commands: Discord offers no guild command in a DM
    process = await BotProcess.start(settings, [FakeBackend()], sim, allow_dms=False, guild_ids=[])
    try:
        dm = await slash(sim, "imagine", {"prompt": "hi"}, channel="800", where=place(guild=None))
        answer = await sim.state.wait_until(lambda: response(sim, dm.id))
        assert answer.ephemeral and "direct messages" in answer.content
    finally:
        await process.stop()


async def test_preset_autocomplete_lists_allowed_presets(sim: DiscordSimulator, tmp_path: Path) -> None:
    settings = make_settings(tmp_path / "data", presets={"spicy": {"checkpoint": "x", "nsfw": True}})
    process = await BotProcess.start(settings, [FakeBackend()], sim)
    try:
        ask = await slash(sim, "imagine", {"prompt": "x", "preset": ""}, autocomplete="preset")
        choices = await sim.state.wait_until(lambda: sim.state.interactions[ask.id].choices)
        names = {choice["value"] for choice in choices}
        assert names and names <= set(process.app.settings.presets)
        assert "spicy" in process.app.settings.presets and "spicy" not in names
    finally:
        await process.stop()
