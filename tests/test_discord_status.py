"""The job's status message on Discord is the outbound's from its first post: a slow answer to the interaction
never leaves a "Queued" message with a live Cancel button behind the result."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from simulators.discord_events import slash
from simulators.discord_faults import SlowDiscordSimulator
from simulators.discord_harness import BotProcess, patched
from tests.conftest import make_settings
from tests.fakes import FakeBackend

pytestmark = pytest.mark.discord


@pytest.fixture
async def slow_sim() -> AsyncIterator[SlowDiscordSimulator]:
    simulator = SlowDiscordSimulator(time_scale=0.05)
    url = await simulator.start()
    with patched(url):
        yield simulator
    await simulator.stop()


async def test_slow_interaction_answer_leaves_no_stale_status(slow_sim: SlowDiscordSimulator, tmp_path: Path) -> None:
    backend = FakeBackend()
    process = await BotProcess.start(make_settings(tmp_path / "data"), [backend], slow_sim)
    try:
        slow_sim.slow["/callback"] = 9.0  # longer than the old waits between the adapter and the engine (3 + 5 s)
        interaction = await slash(slow_sim, "imagine", {"prompt": "a quick fox"})
        await slow_sim.state.wait_until(lambda: interaction.response_id is not None)
        message = slow_sim.state.messages[interaction.response_id or ""]
        job_id = message.custom_ids()[0][0].split(":")[1]
        async with asyncio.timeout(30):
            await process.app.engine.finished_event(job_id).wait()
        slow_sim.slow.clear()
        live_cancel = [
            m for m in slow_sim.state.messages.values() if not m.deleted and [f"cancel:{job_id}"] in m.custom_ids()
        ]
        assert live_cancel == [], "no status message with a live Cancel button outlives the job"
        results = [m for m in slow_sim.state.messages.values() if not m.deleted and m.files]
        assert len(results) == 1 and results[0].id == message.id, "the result replaced the status message"
        assert not interaction.late
    finally:
        await process.stop()


async def test_result_discord_refuses_is_reported_marked_and_refunded(
    slow_sim: SlowDiscordSimulator, tmp_path: Path
) -> None:
    backend = FakeBackend()
    quota = {"enabled": True, "user_daily": 100000.0, "server_daily": 100000.0}
    process = await BotProcess.start(make_settings(tmp_path / "data", quota=quota), [backend], slow_sim)
    try:
        slow_sim.refuse_uploads = (400, 50035, "Invalid Form Body")
        interaction = await slash(slow_sim, "imagine", {"prompt": "a refused upload"})
        await slow_sim.state.wait_until(lambda: interaction.response_id is not None)
        message = slow_sim.state.messages[interaction.response_id or ""]
        job_id = message.custom_ids()[0][0].split(":")[1]
        async with asyncio.timeout(20):
            await process.app.engine.finished_event(job_id).wait()
        job = await process.app.services.store.get(job_id)
        assert job is not None and job.delivery.value == "undeliverable"
        ledger = await process.app.db.fetchone("SELECT state FROM quota_ledger WHERE job_id = ?", (job_id,))
        assert ledger is not None and ledger[0] == "refunded"
        assert any("could not send the result" in m.content for m in slow_sim.state.messages.values())
        assert slow_sim.refused == 1, "a refusal is not retried"
    finally:
        await process.stop()
