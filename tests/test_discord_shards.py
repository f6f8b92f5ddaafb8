"""Discord sharding across processes, with the real discord.py against the simulator's sharded gateway: each
process gets and answers its own guilds' interactions, DMs go to shard 0, commands sync once, a bad layout is
refused, and "Sharding required" says what to set."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from bot.app_check import run_check
from bot.cli import main
from simulators.discord import DiscordSimulator
from simulators.discord_events import place, slash
from simulators.discord_harness import BotProcess, patched
from simulators.discord_shards import guild_on_shard
from simulators.discord_state import SimMessage
from tests.conftest import make_settings
from tests.fakes import FakeBackend

pytestmark = pytest.mark.discord
GUILD_ONE = guild_on_shard(1, 2)  # guild "500" is on shard 0 of 2


@pytest.fixture
async def sim() -> AsyncIterator[DiscordSimulator]:
    simulator = DiscordSimulator(time_scale=0.05)
    simulator.add_guild(GUILD_ONE)
    url = await simulator.start()
    with patched(url):
        yield simulator
    await simulator.stop()


async def start(
    sim: DiscordSimulator, data: Path, backend: FakeBackend, ready_within: float = 10.0, **config: Any
) -> BotProcess:
    return await BotProcess.start(make_settings(data), [backend], sim, ready_within=ready_within, **config)


def answer(sim: DiscordSimulator, interaction_id: str) -> SimMessage | None:
    interaction = sim.state.interactions[interaction_id]
    return sim.state.messages.get(interaction.response_id or "")


async def job_of(sim: DiscordSimulator, interaction_id: str) -> str:
    message = await sim.state.wait_until(lambda: answer(sim, interaction_id))
    return str(message.custom_ids()[0][0].split(":")[1])


async def owner(processes: list[BotProcess], job_id: str) -> int:
    """Which process queued the job (each has its own store here)."""
    found = [i for i, p in enumerate(processes) if await p.app.services.store.get(job_id) is not None]
    assert len(found) == 1, found
    return found[0]


@pytest.mark.parametrize("guild_ids", [[], ["500", GUILD_ONE]], ids=["global", "guild-commands"])
async def test_two_processes_each_answer_their_own_guilds_and_dms_go_to_shard_zero(
    sim: DiscordSimulator, tmp_path: Path, guild_ids: list[str]
) -> None:
    zero = await start(sim, tmp_path / "a", FakeBackend(), shard_count=2, shard_ids=[0], guild_ids=guild_ids)
    one = await start(sim, tmp_path / "b", FakeBackend(), shard_count=2, shard_ids=[1], guild_ids=guild_ids)
    processes = [zero, one]
    try:
        assert sorted(s for s in sim.shards_connected() if s) == [(0, 2), (1, 2)]
        syncs = sim.state.requests_to("/commands", "PUT")
        assert len(syncs) == max(1, len(guild_ids))  # shard 0's process alone synced
        here = await slash(sim, "imagine", {"prompt": "a fox"}, where=place(guild="500"))
        there = await slash(sim, "imagine", {"prompt": "an owl"}, where=place(guild=GUILD_ONE), channel="701")
        assert await owner(processes, await job_of(sim, here.id)) == 0
        assert await owner(processes, await job_of(sim, there.id)) == 1
        assert not here.late and not there.late
        if not guild_ids:  # a DM offers only global commands
            dm = await slash(sim, "imagine", {"prompt": "a cat"}, where=place(guild=None), channel="702")
            assert await owner(processes, await job_of(sim, dm.id)) == 0
    finally:
        await one.stop()
        await zero.stop()


async def test_processes_started_together_both_connect_past_the_identify_limit(
    sim: DiscordSimulator, tmp_path: Path
) -> None:
    """max_concurrency 1: Discord takes one IDENTIFY per 5 s; the other gets Invalid Session and identifies again."""
    sim.sharding.identify_window = 5.0
    processes = await asyncio.gather(
        *(
            start(sim, tmp_path / str(shard), FakeBackend(), shard_count=2, shard_ids=[shard], ready_within=30)
            for shard in (0, 1)
        )
    )
    try:
        assert sim.sharding.invalid_sessions >= 1
        assert sorted(s for s in sim.shards_connected() if s) == [(0, 2), (1, 2)]
    finally:
        for process in processes:
            await process.stop()


async def test_a_job_queued_on_shard_zero_is_delivered_by_shard_ones_process(
    sim: DiscordSimulator, tmp_path: Path
) -> None:
    """REST needs no gateway: a process delivers to a channel whose guild is not on its shards (not in its cache)."""
    held = FakeBackend(hold=True)
    zero = await start(sim, tmp_path / "data", held, shard_count=2, shard_ids=[0])
    interaction = await slash(sim, "imagine", {"prompt": "a heron"}, where=place(guild="500"), channel="700")
    job_id = await job_of(sim, interaction.id)
    await zero.stop()  # the job is left in the queue for the next process on this store
    one = await start(sim, tmp_path / "data", FakeBackend(), shard_count=2, shard_ids=[1], token_switch_seconds=1e-6)
    try:
        client = one.platform.client
        assert client is not None and client.get_guild(500) is None and client.get_channel(700) is None
        await one.app.engine.finished_event(job_id).wait()
        message = await sim.state.wait_until(lambda: (m := answer(sim, interaction.id)) and m.files and m)
        assert message.channel_id == "700"
        assert sim.state.requests_to(f"/channels/700/messages/{message.id}", "PATCH")  # the bot token, by channel
    finally:
        await one.stop()


async def test_a_shard_id_outside_the_count_is_refused_before_connecting(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "imagebridge.toml"
    config.write_text("[discord]\nenabled = true\nshard_count = 2\nshard_ids = [0, 2]\n", encoding="utf-8")
    monkeypatch.setenv("DISCORD_TOKEN", "bot-token")
    assert main(["--config", str(config), "run"]) == 2
    err = capsys.readouterr().err
    assert "discord: shard_ids [2] out of range: ids run from 0 to shard_count - 1 = 1" in err


async def test_check_shows_this_processes_shards(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    settings = make_settings(tmp_path / "data", discord={"enabled": True, "shard_count": 4, "shard_ids": [2, 3]})
    await run_check(settings, backends=[])
    out = capsys.readouterr().out
    assert "discord: shards [2, 3] of shard_count 4; no command sync, no DMs (shard 0's process)" in out


async def test_sharding_required_says_what_to_set(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    simulator = DiscordSimulator(time_scale=0.05, guilds_per_shard=1)  # two guilds: more than one session holds
    simulator.add_guild(GUILD_ONE)
    url = await simulator.start()
    caplog.set_level(logging.ERROR, logger="adapters.discord")
    try:
        with patched(url):
            with pytest.raises(RuntimeError, match="4011 Sharding required"):
                await start(simulator, tmp_path / "a", FakeBackend())
            assert simulator.closed_with == [4011]
            assert "Set [discord] shard_count = 2 in every process" in caplog.text
            processes = [
                await start(simulator, tmp_path / name, FakeBackend(), shard_count=2, shard_ids=[shard])
                for name, shard in (("b", 0), ("c", 1))
            ]
            for process in processes:
                await process.stop()
    finally:
        await simulator.stop()
