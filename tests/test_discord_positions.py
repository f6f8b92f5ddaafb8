"""Discord, through the real discord.py: a waiting job's message follows the line down."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from simulators.discord import DiscordSimulator
from simulators.discord_events import slash
from simulators.discord_harness import BotProcess
from tests.conftest import make_settings
from tests.discord_support import discord_sim  # noqa: F401 (the `sim` fixture)
from tests.gated import GatedBackend
from tests.test_discord_flow import response

pytestmark = pytest.mark.discord


async def test_the_queued_message_is_edited_as_the_line_moves(sim: DiscordSimulator, tmp_path: Path) -> None:
    backend = GatedBackend()
    process = await BotProcess.start(make_settings(tmp_path / "data"), [backend], sim)
    try:
        process.app.engine.positions.interval = 0.0
        await slash(sim, "imagine", {"prompt": "the first"})
        async with asyncio.timeout(10):
            await backend.started.wait()
        await slash(sim, "imagine", {"prompt": "the second"})
        third = await slash(sim, "imagine", {"prompt": "the third"})
        message = await sim.state.wait_until(lambda: response(sim, third.id))
        assert "Queued #2" in message.content and message.edits == 0
        backend.gates[0].set()  # the first finishes, the second starts: the third is next
        await sim.state.wait_until(lambda: "Queued #1" in message.content)
        assert message.edits == 1
    finally:
        for gate in backend.gates:
            gate.set()
        await process.stop()
