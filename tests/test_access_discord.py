"""Discord roles through the real discord.py: the gateway sends member role ids and the guild's roles, and the
config's role names and ids both match. Also: no interaction token is written to the database."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from simulators.discord import DiscordSimulator
from simulators.discord_events import place, slash
from simulators.discord_harness import BotProcess, patched
from simulators.discord_state import SimMessage
from tests.conftest import make_settings
from tests.fakes import FakeBackend
from tests.reliability_support import read_db

pytestmark = pytest.mark.discord

VIP, MODS, PAINTER, DECOY = "600", "601", "602", "603"


@pytest.fixture
async def sim() -> AsyncIterator[DiscordSimulator]:
    simulator = DiscordSimulator(time_scale=0.05)
    simulator.add_guild("500", roles={VIP: "vip", MODS: "mods", PAINTER: "painter", DECOY: "painter-decoy"})
    simulator.add_guild("501", roles={"700": "vip"})  # another server's "vip": names count only in guild_ids
    url = await simulator.start()
    with patched(url):
        yield simulator
    await simulator.stop()


@pytest.fixture
async def process(sim: DiscordSimulator, tmp_path: Path) -> AsyncIterator[BotProcess]:
    settings = make_settings(
        tmp_path / "data",
        quota={"user_daily": 10.0, "roles": {"vip": 1000.0, PAINTER: 1000.0}},  # one sd15 job (6.55) by default
    )
    bot = await BotProcess.start(settings, [FakeBackend()], sim, admin_roles=["mods"])
    yield bot
    await bot.stop()


async def answer(sim: DiscordSimulator, name: str, options: dict[str, object], where: dict[str, object]) -> str:
    interaction = await slash(sim, name, options, where=where)
    return (await sim.state.wait_until(lambda: response_of(sim, interaction.id))).content


async def twice(sim: DiscordSimulator, user: str, roles: list[str], guild: str = "500") -> list[str]:
    where = place(user=user, roles=roles, guild=guild)
    return [await answer(sim, "imagine", {"prompt": f"job {n}", "preset": "sd15"}, where) for n in (1, 2)]


async def test_role_quotas_and_admin_roles_match_by_name_and_by_id(process: BotProcess, sim: DiscordSimulator) -> None:
    by_name, by_id, plain = await twice(sim, "42", [VIP]), await twice(sim, "43", [PAINTER]), await twice(sim, "44", [])
    assert all("Queued" in text for text in by_name), by_name
    assert all("Queued" in text for text in by_id), by_id
    assert "Queued" in plain[0] and "daily quota" in plain[1], plain
    decoy = await twice(sim, "45", [DECOY])
    assert "daily quota" in decoy[1], "a role is matched by its id or its exact name"
    elsewhere = await twice(sim, "48", ["700"], guild="501")
    assert "daily quota" in elsewhere[1], "another server's role called 'vip' is not the configured vip"

    manager = place(user="49", admin=True)  # Manage Server: runs /admin here, and is charged like anyone
    managed = [await answer(sim, "imagine", {"prompt": f"job {n}", "preset": "sd15"}, manager) for n in (1, 2)]
    assert "Queued" in managed[0] and "daily quota" in managed[1], managed

    moderator = place(user="46", roles=[MODS])
    assert "Blocked here" in await answer(sim, "admin", {"action": "block"}, moderator)
    by_role_name = {"action": "quota", "target": "role", "value": "painter", "extra": "5"}
    assert "role's id" in await answer(sim, "admin", by_role_name, moderator)
    by_mention = {"action": "quota", "target": "role", "value": f"<@&{PAINTER}>", "extra": "5"}
    assert PAINTER in await answer(sim, "admin", by_mention, moderator)
    server = await process.app.services.accounts.server("discord", "500")
    assert server.role_limits == {PAINTER: 5.0}
    outsider = place(user="47", roles=[VIP])
    assert "Only server admins" in await answer(sim, "admin", {"action": "backends"}, outsider)

    # Discord's gateway sends every interaction's token; the database keeps none of them.
    database = process.app.settings.data_dir / "imagebridge.sqlite3"
    rows = "\n".join(str(row) for row in read_db(database, "SELECT * FROM jobs"))
    assert rows and not [i.token for i in sim.state.interactions.values() if i.token in rows]


async def test_a_job_is_not_shown_in_another_channel_or_to_another_user(
    process: BotProcess, sim: DiscordSimulator
) -> None:
    owner = place(user="42", roles=[VIP])
    made = await answer(sim, "imagine", {"prompt": "a private sketch", "preset": "sd15"}, owner)
    job_id = made.split("job ")[-1].strip()[:12]
    async with asyncio.timeout(10):
        await process.app.engine.finished_event(job_id).wait()
    stranger_elsewhere = await slash(sim, "show", {"job": job_id}, channel="701", where=place(user="47"))
    shown = await sim.state.wait_until(lambda: response_of(sim, stranger_elsewhere.id))
    assert "no job" in shown.content and not shown.files
    owner_elsewhere = await slash(sim, "show", {"job": job_id}, channel="701", where=owner)
    assert (await sim.state.wait_until(lambda: response_of(sim, owner_elsewhere.id))).files, "the owner may"


def response_of(sim: DiscordSimulator, interaction_id: str) -> SimMessage | None:
    found = sim.state.interactions[interaction_id].response_id
    return sim.state.messages.get(found) if found else None
