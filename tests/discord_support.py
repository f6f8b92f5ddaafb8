"""The Discord simulator fixture most Discord tests share: the real discord.py pointed at it for the test."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from simulators.discord import DiscordSimulator
from simulators.discord_harness import patched


@pytest.fixture(name="sim")
async def discord_sim() -> AsyncIterator[DiscordSimulator]:
    """A Discord simulator on loopback, with discord.py's HTTP and gateway URLs patched to it (fixture `sim`)."""
    simulator = DiscordSimulator(time_scale=0.05)
    url = await simulator.start()
    with patched(url):
        yield simulator
    await simulator.stop()
