"""A private job's progress on Discord, through the real discord.py against the simulator: the owner's DM gets a
status message (queued, then progress with its preview) that is edited into the result, the channel's status
never shows the prompt or a preview, and DMs closed to the bot (403 / 50007) cost one request."""

from __future__ import annotations

from pathlib import Path

import pytest

from simulators.discord import DiscordSimulator
from simulators.discord_events import slash
from simulators.discord_state import SimMessage
from tests.discord_support import discord_sim  # noqa: F401 (the `sim` fixture)
from tests.private_support import PreviewBackend
from tests.test_private_discord import OWNER, dm_messages, done, start, status_of

pytestmark = pytest.mark.discord


def dm_status(sim: DiscordSimulator, job_id: str) -> SimMessage | None:
    return next((m for m in dm_messages(sim) if any(f"cancel:{job_id}" in row for row in m.custom_ids())), None)


async def test_the_dm_follows_the_job_and_its_status_becomes_the_result(sim: DiscordSimulator, tmp_path: Path) -> None:
    backend = PreviewBackend(hold=True)
    process = await start(sim, tmp_path, backend)
    try:
        run = await slash(sim, "imagine", {"prompt": "a secret heron", "private": True})
        job_id, status = await status_of(process, sim, run.id)

        def previewing() -> bool:
            found = dm_status(sim, job_id)
            return found is not None and "25%" in found.content and len(found.files) == 1

        await sim.state.wait_until(previewing)  # progress with its preview, in the DM only
        dm = dm_status(sim, job_id)
        assert dm is not None and "secret heron" in dm.content and dm.edits >= 1
        await sim.state.wait_until(lambda: "25%" in status.content)
        assert status.files == [] and "secret heron" not in status.content
        backend.release.set()
        await done(process, job_id)

        assert [m.id for m in dm_messages(sim)] == [dm.id]  # the status message became the result
        assert "secret heron" in dm.content and "25%" not in dm.content and len(dm.files) == 1
        ids = [custom_id for row in dm.custom_ids() for custom_id in row]
        assert f"reroll:{job_id}" in ids and f"upscale:{job_id}:0" in ids
        assert f"Job {job_id} for user{OWNER} is done: sent to them privately" in status.content
        assert all(not r.files for r in sim.state.requests_to(run.token, "PATCH"))  # no preview in the channel
        assert "secret heron" not in status.content and status.files == []
    finally:
        await process.stop()


async def test_closed_dms_cost_one_request_and_the_job_runs(sim: DiscordSimulator, tmp_path: Path) -> None:
    backend = PreviewBackend(hold=True)
    process = await start(sim, tmp_path, backend)
    try:
        sim.dms.closed.add(OWNER)
        run = await slash(sim, "imagine", {"prompt": "a shy heron", "private": True})
        job_id, status = await status_of(process, sim, run.id)
        await sim.state.wait_until(lambda: "25%" in status.content)  # it runs; the channel's status follows it
        await sim.state.wait_until(lambda: any(r.status == 403 for r in sim.state.requests))  # the DM status: refused
        backend.release.set()
        await done(process, job_id)

        assert len([r for r in sim.state.requests if r.status == 403]) == 1  # neither progress nor result tried it
        assert "Allow direct messages" in status.content and f"/show {job_id}" in status.content, status.content
        assert "shy heron" not in status.content and status.files == [] and dm_messages(sim) == []
    finally:
        await process.stop()


async def test_a_restart_edits_the_same_dm_status(sim: DiscordSimulator, tmp_path: Path) -> None:
    first = await start(sim, tmp_path, PreviewBackend(hold=True))
    try:
        run = await slash(sim, "imagine", {"prompt": "a patient heron", "private": True})
        job_id, _ = await status_of(first, sim, run.id)
        dm = await sim.state.wait_until(lambda: (found := dm_status(sim, job_id)) and "25%" in found.content and found)
    finally:
        await first.stop()
    edits = dm.edits

    backend = PreviewBackend(hold=True)
    second = await start(sim, tmp_path, backend)  # the next process runs it again
    try:
        await sim.state.wait_until(lambda: backend.calls and dm.edits > edits)  # the same message, edited again
        backend.release.set()
        await done(second, job_id)
        assert [m.id for m in dm_messages(sim)] == [dm.id]  # one DM message: its status, then the result
        assert "patient heron" in dm.content and len(dm.files) == 1 and "25%" not in dm.content
    finally:
        await second.stop()
