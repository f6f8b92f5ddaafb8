"""/imagine end to end with the real discord.py against the Discord simulator."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.models import JobState
from simulators.discord import DiscordSimulator
from simulators.discord_events import click, slash
from simulators.discord_harness import BotProcess
from simulators.discord_state import SimMessage
from tests.conftest import make_settings
from tests.discord_support import discord_sim  # noqa: F401 (the `sim` fixture)
from tests.fakes import FakeBackend, png

pytestmark = pytest.mark.discord


@pytest.fixture
async def bot(sim: DiscordSimulator, tmp_path: Path) -> AsyncIterator[tuple[BotProcess, FakeBackend]]:
    backend = FakeBackend()
    process = await BotProcess.start(make_settings(tmp_path / "data"), [backend], sim)
    yield process, backend
    await process.stop()


def response(sim: DiscordSimulator, interaction_id: str) -> SimMessage | None:
    interaction = sim.state.interactions[interaction_id]
    if interaction.response_id is None:
        return None
    return sim.state.messages.get(interaction.response_id)


async def finished(process: BotProcess, sim: DiscordSimulator, interaction_id: str) -> tuple[str, SimMessage]:
    message = await sim.state.wait_until(lambda: response(sim, interaction_id))
    job_id = message.custom_ids()[0][0].split(":")[1]
    async with asyncio.timeout(10):
        await process.app.engine.finished_event(job_id).wait()
    return job_id, message


async def test_commands_are_synced_to_the_guild(bot: tuple[BotProcess, FakeBackend], sim: DiscordSimulator) -> None:
    names = {command["name"] for command in sim.state.commands["500"]}
    assert {"imagine", "cancel", "queue", "history", "show", "quota", "presets", "help", "admin"} <= names
    imagine = next(c for c in sim.state.commands["500"] if c["name"] == "imagine")
    assert [o["name"] for o in imagine["options"]][:2] == ["prompt", "negative"]


async def test_imagine_answers_in_time_shows_progress_and_result(
    bot: tuple[BotProcess, FakeBackend], sim: DiscordSimulator
) -> None:
    process, backend = bot
    backend.hold = True
    interaction = await slash(sim, "imagine", {"prompt": "a red fox", "count": 2})
    message = await sim.state.wait_until(lambda: response(sim, interaction.id))
    assert not interaction.late and not message.ephemeral
    job_id = message.custom_ids()[0][0].split(":")[1]
    assert message.custom_ids() == [[f"cancel:{job_id}"]]
    await sim.state.wait_until(lambda: message.edits >= 1 and "%" in message.content)
    backend.release.set()
    async with asyncio.timeout(10):
        await process.app.engine.finished_event(job_id).wait()
    assert len(message.files) == 2
    ids = [i for row in message.custom_ids() for i in row]
    assert f"reroll:{job_id}" in ids and f"vary:{job_id}:1" in ids and f"upscale:{job_id}:0" in ids
    assert f"delete:{job_id}" in ids and f"info:{job_id}" in ids
    assert all(
        r.payload.get("allowed_mentions") == {"parse": []} for r in sim.state.requests_to(interaction.token, "PATCH")
    )


async def test_everyone_in_a_prompt_pings_nobody(bot: tuple[BotProcess, FakeBackend], sim: DiscordSimulator) -> None:
    process, _ = bot
    interaction = await slash(sim, "imagine", {"prompt": "@everyone look at this"})
    _, message = await finished(process, sim, interaction.id)
    assert "@everyone" in message.content and message.allowed_mentions == {"parse": []}
    callback = sim.state.requests_to(f"/interactions/{interaction.id}/")[0]
    assert callback.payload["data"]["allowed_mentions"] == {"parse": []}


async def test_img2img_downloads_the_attachment(bot: tuple[BotProcess, FakeBackend], sim: DiscordSimulator) -> None:
    process, _backend = bot
    interaction = await slash(sim, "imagine", {"prompt": "make it blue"}, attachment=("src.png", png(96, 96)))
    job_id, message = await finished(process, sim, interaction.id)
    job = await process.app.services.store.get(job_id)
    assert job is not None and job.request.kind == "img2img" and job.request.source_image_id
    assert len(message.files) == 1


async def test_buttons_reroll_vary_upscale_info_delete(
    bot: tuple[BotProcess, FakeBackend], sim: DiscordSimulator
) -> None:
    process, _backend = bot
    interaction = await slash(sim, "imagine", {"prompt": "a castle", "count": 2})
    job_id, message = await finished(process, sim, interaction.id)
    for custom_id, kind in (
        (f"reroll:{job_id}", "txt2img"),
        (f"vary:{job_id}:1", "txt2img"),
        (f"upscale:{job_id}:0", "upscale"),
    ):
        press = await click(sim, message.id, custom_id)
        new_id, new_message = await finished(process, sim, press.id)
        job = await process.app.services.store.get(new_id)
        assert job is not None and job.state is JobState.SUCCEEDED and job.request.kind == kind
        assert job.request.parent_job_id == job_id and len(new_message.files) == job.request.count
    info = await click(sim, message.id, f"info:{job_id}")
    info_message = await sim.state.wait_until(lambda: response(sim, info.id))
    assert info_message.ephemeral and job_id in info_message.content
    delete = await click(sim, message.id, f"delete:{job_id}")
    await sim.state.wait_until(lambda: message.deleted)
    assert not delete.late
