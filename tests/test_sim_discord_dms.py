"""The Discord simulator answers DMs as Discord does, checked with the real discord.py: POST
/users/@me/channels opens one DM channel per user; a user with closed DMs makes a send fail with 50007."""

from __future__ import annotations

from pathlib import Path

import discord
import pytest

from simulators.discord import DiscordSimulator
from simulators.discord_harness import BotProcess
from tests.conftest import make_settings
from tests.discord_support import discord_sim  # noqa: F401 (the `sim` fixture)
from tests.fakes import FakeBackend


@pytest.mark.discord
async def test_a_dm_opens_once_and_a_closed_one_refuses_with_50007(sim: DiscordSimulator, tmp_path: Path) -> None:
    process = await BotProcess.start(make_settings(tmp_path / "data"), [FakeBackend()], sim)
    try:
        client = process.platform.client
        assert client is not None
        dm = await client.create_dm(discord.Object(id=501))
        sent = await dm.send("your image")
        assert sim.state.messages[str(sent.id)].channel_id == str(dm.id) == sim.dms.channels["501"]
        assert len(sim.state.requests_to("/users/@me/channels", "POST")) == 1

        sim.dms.closed.add("502")
        closed = await client.create_dm(discord.Object(id=502))
        with pytest.raises(discord.Forbidden) as refused:
            await closed.send("your image")
        assert refused.value.code == 50007 and "Cannot send messages to this user" in str(refused.value)
    finally:
        await process.stop()


@pytest.mark.discord
async def test_a_guild_command_is_not_offered_in_a_dm(sim: DiscordSimulator, tmp_path: Path) -> None:
    from simulators.discord_events import place, slash

    process = await BotProcess.start(make_settings(tmp_path / "data"), [FakeBackend()], sim)  # guild 500 only
    try:
        with pytest.raises(ValueError, match="not a global command"):
            await slash(sim, "show", {"job": "x"}, channel="800", where=place(guild=None))
    finally:
        await process.stop()
