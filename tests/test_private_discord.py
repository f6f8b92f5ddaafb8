"""Private results on Discord, through the real discord.py against the simulator: the result goes to the user's
DM (POST /users/@me/channels, then the message with its buttons), the channel's status message only says it is
done; closed DMs (403 / 50007) hold the result until /show in the DM."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from bot.models import DeliveryState
from simulators.discord import DiscordSimulator
from simulators.discord_events import place, slash
from simulators.discord_harness import BotProcess
from simulators.discord_state import SimMessage
from tests.conftest import make_settings
from tests.discord_support import discord_sim  # noqa: F401 (the `sim` fixture)
from tests.fakes import FakeBackend
from tests.private_support import PreviewBackend
from tests.test_discord_flow import response

pytestmark = pytest.mark.discord

OWNER = "42"


async def start(sim: DiscordSimulator, tmp_path: Path, backend: FakeBackend) -> BotProcess:
    # Global commands: guild-only ones are not offered in DMs, where /show fetches a held result.
    return await BotProcess.start(make_settings(tmp_path / "data"), [backend], sim, guild_ids=[])


def dm_messages(sim: DiscordSimulator, user: str = OWNER) -> list[SimMessage]:
    channel = sim.dms.channels.get(user)
    return [m for m in sim.state.messages.values() if channel is not None and m.channel_id == channel]


async def status_of(process: BotProcess, sim: DiscordSimulator, interaction_id: str) -> tuple[str, SimMessage]:
    message = await sim.state.wait_until(lambda: response(sim, interaction_id))
    return message.custom_ids()[0][0].split(":")[1], message


async def done(process: BotProcess, job_id: str) -> None:
    async with asyncio.timeout(10):
        await process.app.engine.finished_event(job_id).wait()


async def answer(sim: DiscordSimulator, interaction_id: str) -> SimMessage:
    found: SimMessage = await sim.state.wait_until(lambda: response(sim, interaction_id))
    return found


async def test_a_private_result_goes_to_the_dm_and_the_channel_sees_only_that_it_is_done(
    sim: DiscordSimulator, tmp_path: Path
) -> None:
    backend = PreviewBackend(hold=True)
    process = await start(sim, tmp_path, backend)
    try:
        run = await slash(sim, "imagine", {"prompt": "a secret heron", "private": True})
        job_id, status = await status_of(process, sim, run.id)
        assert "secret heron" not in status.content and not status.ephemeral
        await sim.state.wait_until(lambda: "25%" in status.content)  # progress shown, its preview not
        backend.release.set()
        await done(process, job_id)

        assert f"Job {job_id} for user{OWNER} is done: sent to them privately" in status.content
        assert status.files == [] and status.custom_ids() == [] and "secret heron" not in status.content
        assert all(not r.files for r in sim.state.requests_to(run.token, "PATCH"))  # no preview was ever sent
        [dm] = dm_messages(sim)
        assert "secret heron" in dm.content and len(dm.files) == 1
        ids = [custom_id for row in dm.custom_ids() for custom_id in row]
        assert f"reroll:{job_id}" in ids and f"upscale:{job_id}:0" in ids
        job = await process.app.services.store.get(job_id)
        assert job is not None and job.destination.private and job.delivery is DeliveryState.DELIVERED
    finally:
        await process.stop()


async def test_closed_dms_hold_the_result_until_show_in_the_dm(sim: DiscordSimulator, tmp_path: Path) -> None:
    process = await start(sim, tmp_path, FakeBackend())
    try:
        sim.dms.closed.add(OWNER)
        run = await slash(sim, "imagine", {"prompt": "a shy heron", "private": True})
        job_id, status = await status_of(process, sim, run.id)
        await done(process, job_id)
        assert "Allow direct messages" in status.content and f"/show {job_id}" in status.content, status.content
        assert "shy heron" not in status.content and status.files == []
        refused = [r for r in sim.state.requests_to("/messages", "POST") if r.status == 403]
        assert len(refused) == 1 and dm_messages(sim) == []
        for _ in range(3):  # the sweep does not retry a DM that refuses the bot
            await process.app.engine.deliver_pending()
        assert len([r for r in sim.state.requests if r.status == 403]) == 1
        job = await process.app.services.store.get(job_id)
        assert job is not None and job.delivery is DeliveryState.HELD

        sim.dms.closed.discard(OWNER)  # the user allows DMs, then asks in the DM
        dm = sim.dms.open({"recipient_id": OWNER})["id"]
        shown = await slash(sim, "show", {"job": job_id}, channel=dm, where=place(guild=None))
        result = await answer(sim, shown.id)
        assert "shy heron" in result.content and len(result.files) == 1 and not result.ephemeral
        assert any(f"vary:{job_id}:0" in row for row in result.custom_ids())
        job = await process.app.services.store.get(job_id)
        assert job is not None and job.delivery is DeliveryState.DELIVERED
    finally:
        await process.stop()


async def test_show_and_history_in_the_channel_keep_it_private(sim: DiscordSimulator, tmp_path: Path) -> None:
    process = await start(sim, tmp_path, FakeBackend())
    try:
        run = await slash(sim, "imagine", {"prompt": "a secret heron", "private": True})
        job_id, _ = await status_of(process, sim, run.id)
        await done(process, job_id)
        assert len(dm_messages(sim)) == 1

        mine = await answer(sim, (await slash(sim, "show", {"job": job_id})).id)
        assert mine.ephemeral and "I sent it to you" in mine.content and mine.files == []
        await sim.state.wait_until(lambda: len(dm_messages(sim)) == 2)
        other = await answer(sim, (await slash(sim, "show", {"job": job_id}, where=place(user="99"))).id)
        assert other.ephemeral and "only its owner sees it" in other.content and other.files == []
        listed = await answer(sim, (await slash(sim, "history")).id)
        assert job_id in listed.content and "secret heron" not in listed.content
        assert not any("secret heron" in m.content for m in sim.state.messages.values() if m.channel_id == "700")
    finally:
        await process.stop()


async def test_the_setting_makes_results_private_and_private_false_overrides_it(
    sim: DiscordSimulator, tmp_path: Path
) -> None:
    process = await start(sim, tmp_path, FakeBackend())
    try:
        panel = await answer(sim, (await slash(sim, "settings", {"key": "private", "value": "on"})).id)
        assert "Private results: on" in panel.content
        quiet, _ = await status_of(process, sim, (await slash(sim, "imagine", {"prompt": "a quiet heron"})).id)
        await done(process, quiet)
        loud_run = await slash(sim, "imagine", {"prompt": "a loud heron", "private": False})
        loud, loud_status = await status_of(process, sim, loud_run.id)
        await done(process, loud)
        assert "loud heron" in loud_status.content and len(loud_status.files) == 1
        [dm] = dm_messages(sim)  # the setting's job only
        assert "quiet heron" in dm.content and len(dm.files) == 1
    finally:
        await process.stop()
