"""The Discord simulator's gateway shards as Discord documents them: which session gets which guild's events,
DMs on shard 0, close codes 4010 / 4011, READY's `shard` and `GET /gateway/bot`."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from simulators.discord import DiscordSimulator
from simulators.discord_shards import guild_on_shard, shard_of

pytestmark = pytest.mark.discord


@pytest.fixture
async def sim() -> AsyncIterator[DiscordSimulator]:
    simulator = DiscordSimulator(guilds_per_shard=3)
    await simulator.start()
    yield simulator
    await simulator.stop()


class Session:
    """A raw gateway connection: HELLO read, IDENTIFY sent, frames collected."""

    def __init__(self, http: aiohttp.ClientSession, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.http, self.ws = http, ws

    @classmethod
    async def open(cls, sim: DiscordSimulator, shard: list[int] | None) -> Session:
        http = aiohttp.ClientSession()
        ws = await http.ws_connect(sim.url.replace("http", "ws") + "/gateway")
        hello = await ws.receive_json(timeout=5)
        assert hello["op"] == 10
        identify: dict[str, Any] = {"token": "bot-token", "intents": 1, "properties": {}}
        if shard is not None:
            identify["shard"] = shard
        await ws.send_json({"op": 2, "d": identify})
        return cls(http, ws)

    async def dispatches(self, count: int) -> list[dict[str, Any]]:
        return [await self.ws.receive_json(timeout=5) for _ in range(count)]

    async def close_code(self) -> int | None:
        message = await self.ws.receive(timeout=5)
        assert message.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.CLOSING)
        return self.ws.close_code

    async def close(self) -> None:
        await self.ws.close()
        await self.http.close()


def test_a_guild_goes_to_the_shard_its_id_gives() -> None:
    assert shard_of("500", 2) == 0
    assert shard_of(str(1 << 22), 2) == 1
    assert shard_of(guild_on_shard(3, 4, index=2), 4) == 3


async def test_each_shard_gets_only_its_guilds_and_dms_go_to_shard_zero(sim: DiscordSimulator) -> None:
    on_one = guild_on_shard(1, 2)
    sim.add_guild(on_one)
    zero, one = await Session.open(sim, [0, 2]), await Session.open(sim, [1, 2])
    try:
        ready0, create0 = await zero.dispatches(2)
        ready1, create1 = await one.dispatches(2)
        assert ready0["t"] == "READY" and ready0["d"]["shard"] == [0, 2]
        assert [g["id"] for g in ready0["d"]["guilds"]] == ["500"] and create0["d"]["id"] == "500"
        assert ready1["d"]["shard"] == [1, 2] and [g["id"] for g in ready1["d"]["guilds"]] == [on_one]
        assert create1["t"] == "GUILD_CREATE" and create1["d"]["id"] == on_one
        await sim.dispatch("INTERACTION_CREATE", {"id": "1", "guild_id": on_one})
        await sim.dispatch("INTERACTION_CREATE", {"id": "2", "guild_id": "500"})
        await sim.dispatch("INTERACTION_CREATE", {"id": "3"})  # a DM: no guild
        assert [f["d"]["id"] for f in await zero.dispatches(2)] == ["2", "3"]
        assert [f["d"]["id"] for f in await one.dispatches(1)] == ["1"]
        assert sorted(s for s in sim.shards_connected() if s) == [(0, 2), (1, 2)]
    finally:
        await zero.close()
        await one.close()


async def test_an_unsharded_session_gets_everything_and_ready_has_no_shard(sim: DiscordSimulator) -> None:
    sim.add_guild(guild_on_shard(1, 2))
    session = await Session.open(sim, None)
    try:
        ready, *creates = await session.dispatches(3)
        assert "shard" not in ready["d"] and len(ready["d"]["guilds"]) == 2
        assert {c["t"] for c in creates} == {"GUILD_CREATE"}
    finally:
        await session.close()


@pytest.mark.parametrize("shard", [[2, 2], [-1, 2], [0, 0], [1]])
async def test_an_invalid_shard_is_closed_with_4010(sim: DiscordSimulator, shard: list[int]) -> None:
    session = await Session.open(sim, shard)
    try:
        assert await session.close_code() == 4010
        assert sim.closed_with == [4010]
    finally:
        await session.close()


async def test_too_many_guilds_on_one_session_is_closed_with_4011(sim: DiscordSimulator) -> None:
    for index in range(3):  # four guilds with the default one: more than the three one session may hold
        sim.add_guild(guild_on_shard(index % 2, 2, index=index))
    unsharded = await Session.open(sim, None)
    try:
        assert await unsharded.close_code() == 4011
    finally:
        await unsharded.close()
    sharded = await Session.open(sim, [0, 2])  # two shards hold two or three guilds each: allowed
    try:
        ready = (await sharded.dispatches(1))[0]
        assert ready["t"] == "READY" and ready["d"]["shard"] == [0, 2]
    finally:
        await sharded.close()


async def test_gateway_bot_recommends_shards_and_counts_session_starts(sim: DiscordSimulator) -> None:
    async with aiohttp.ClientSession() as http:
        async with http.get(sim.url + "/api/v10/gateway/bot") as response:
            before = await response.json()
        session = await Session.open(sim, None)
        await session.dispatches(1)
        await session.close()
        async with http.get(sim.url + "/api/v10/gateway/bot") as response:
            after = await response.json()
    assert before["url"].endswith("/gateway") and before["shards"] == 1
    limit = before["session_start_limit"]
    assert set(limit) == {"total", "remaining", "reset_after", "max_concurrency"} and limit["max_concurrency"] == 1
    assert after["session_start_limit"]["remaining"] == limit["remaining"] - 1


@pytest.mark.parametrize(("concurrency", "refused"), [(1, True), (2, False)])
async def test_identifies_beyond_max_concurrency_get_invalid_session(
    sim: DiscordSimulator, concurrency: int, refused: bool
) -> None:
    sim.sharding.identify_window, sim.sharding.max_concurrency = 5.0, concurrency
    first, second = await Session.open(sim, [0, 2]), await Session.open(sim, [1, 2])  # buckets 0, and 1 % n
    try:
        assert (await first.dispatches(1))[0]["t"] == "READY"
        answer = (await second.dispatches(1))[0]
        assert (answer == {"op": 9, "d": False}) is refused and sim.sharding.invalid_sessions == int(refused)
    finally:
        await first.close()
        await second.close()
