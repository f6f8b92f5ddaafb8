"""/gallery through the real discord.py against the Discord simulator: the link is ephemeral, and it signs in."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from simulators.discord import DiscordSimulator
from simulators.discord_events import slash
from simulators.discord_harness import BotProcess
from tests.conftest import make_settings
from tests.discord_support import discord_sim  # noqa: F401 (the `sim` fixture)
from tests.fakes import FakeBackend
from tests.web_support import browser, needs_chromium, sign_in

pytestmark = [pytest.mark.discord, needs_chromium]
LINK = re.compile(r"http://127\.0\.0\.1:\d+/gallery/login\?token=\S+")


async def test_discord_gallery_link_is_ephemeral_and_signs_in(sim: DiscordSimulator, tmp_path: Path) -> None:
    settings = make_settings(tmp_path / "data", metrics={"port": 0}, web={"enabled": True})
    process = await BotProcess.start(settings, [FakeBackend()], sim)
    try:
        assert "gallery" in {command["name"] for command in sim.state.commands["500"]}
        interaction = await slash(sim, "gallery", {})
        message = await sim.state.wait_until(
            lambda: sim.state.messages.get(sim.state.interactions[interaction.id].response_id or "")
        )
        assert message.ephemeral  # only the one who asked sees the link
        found = LINK.search(message.content)
        assert found, message.content
        async with browser() as chromium:
            page = await chromium.new_page()
            response = await sign_in(page, found.group(0))
            assert response is not None and response.status == 200 and page.url.endswith("/gallery")
    finally:
        await process.stop()
