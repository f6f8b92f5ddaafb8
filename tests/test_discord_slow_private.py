"""A slow command's private answer stays private on Discord.

Discord fills a public "thinking…" message with the first followup and ignores that followup's ephemeral flag
(receiving-and-responding: "Create Followup Message"), so a refusal sent that way would be shown to the whole
channel. The simulator does the same; the bot removes the loading message before answering privately.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from simulators.discord import DiscordSimulator
from simulators.discord_events import slash
from simulators.discord_harness import BotProcess, patched
from tests.conftest import make_settings
from tests.fakes import FakeBackend

pytestmark = pytest.mark.discord


@pytest.fixture
async def slow_bot(tmp_path: Path) -> AsyncIterator[tuple[DiscordSimulator, BotProcess]]:
    sim = DiscordSimulator(time_scale=0.05)
    url = await sim.start()
    with patched(url):
        process = await BotProcess.start(make_settings(tmp_path / "data"), [FakeBackend()], sim)
        assert process.platform.client is not None
        handler = process.platform.client.handler
        handler.config = handler.config.model_copy(update={"respond_within_seconds": 1e-6})  # every command defers
        yield sim, process
        await process.stop()
    await sim.stop()


async def test_a_slow_commands_refusal_is_seen_only_by_its_user(slow_bot: tuple[DiscordSimulator, BotProcess]) -> None:
    sim, process = slow_bot
    sent = await slash(sim, "imagine", {"prompt": "a red fox", "preset": "no-such-preset"})
    said = await sim.state.wait_until(lambda: [m for m in sim.state.visible() if "no-such-preset" in m.content])
    assert len(said) == 1 and said[0].ephemeral, "the refusal was posted for the whole channel"
    assert sent.response_id is not None and sim.state.messages[sent.response_id].deleted  # no "thinking…" left
    assert not [m for m in sim.state.visible() if not m.ephemeral]
    row = await process.app.db.fetchone("SELECT COUNT(*) FROM jobs")
    assert row is not None and row[0] == 0


async def test_a_slow_commands_job_status_is_public(slow_bot: tuple[DiscordSimulator, BotProcess]) -> None:
    sim, _ = slow_bot
    sent = await slash(sim, "imagine", {"prompt": "a red fox"})
    status = await sim.state.wait_until(lambda: sim.state.messages.get(sent.response_id or ""))
    await sim.state.wait_until(lambda: "fox" in status.content)
    assert not status.ephemeral and not status.deleted  # the status filled the loading message, for everyone
