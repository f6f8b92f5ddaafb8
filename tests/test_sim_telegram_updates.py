"""The Telegram simulator's getUpdates and senders, read by python-telegram-bot's own Bot as the real API would be."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from telegram import Bot
from telegram.constants import ChatID
from telegram.error import Conflict

from simulators.telegram import TelegramSimulator
from simulators.telegram_updates import add_channel, forward_from_channel, send_as_group, send_document

pytestmark = pytest.mark.telegram
GROUP, CHANNEL = -1001, -1009


@pytest.fixture
async def sim_bot() -> AsyncIterator[tuple[TelegramSimulator, Bot]]:
    sim = TelegramSimulator()
    await sim.start()
    sim.add_chat(GROUP, title="artists")
    add_channel(sim, CHANNEL, "news")
    bot = Bot(sim.token, base_url=sim.api_base_url, base_file_url=sim.file_base_url)
    async with bot:
        yield sim, bot
    await sim.stop()


async def test_an_update_is_returned_until_a_higher_offset_confirms_it(sim_bot: tuple[TelegramSimulator, Bot]) -> None:
    sim, bot = sim_bot
    await sim.send_text(GROUP, 5, "/imagine@test_bot a")
    first = await bot.get_updates(timeout=0)
    again = await bot.get_updates(offset=first[0].update_id, timeout=0)
    assert [u.update_id for u in again] == [first[0].update_id] and not sim.polls.confirmed
    assert await bot.get_updates(offset=first[0].update_id + 1, timeout=0) == ()
    assert sim.polls.confirmed == {first[0].update_id} and sim.polls.redelivered == 1


async def test_a_newer_poll_ends_a_held_one_with_409(sim_bot: tuple[TelegramSimulator, Bot]) -> None:
    sim, bot = sim_bot
    held = asyncio.ensure_future(bot.get_updates(timeout=5, read_timeout=10))
    await sim.wait_for(lambda: sim.count("getUpdates") == 1)
    async with Bot(sim.token, base_url=sim.api_base_url) as second:  # a second instance of the bot
        assert await second.get_updates(timeout=0) == ()
    with pytest.raises(Conflict, match="terminated by other getUpdates request"):
        await held


async def test_senders_on_behalf_of_a_chat_and_declared_file_types(sim_bot: tuple[TelegramSimulator, Bot]) -> None:
    sim, bot = sim_bot
    await send_as_group(sim, GROUP, "/imagine@test_bot anonymous")
    await forward_from_channel(sim, GROUP, CHANNEL, "/imagine@test_bot channel post")
    sim.add_chat(5)
    await send_document(sim, 5, 5, b"%PDF-1.7", mime_type="application/pdf", file_name="brief.pdf")
    anonymous, forwarded, document = [u.message for u in await bot.get_updates(timeout=0)]
    assert anonymous and anonymous.sender_chat and anonymous.sender_chat.id == GROUP
    assert anonymous.from_user and anonymous.from_user.id == ChatID.ANONYMOUS_ADMIN and anonymous.from_user.is_bot
    assert forwarded and forwarded.is_automatic_forward and forwarded.sender_chat
    assert forwarded.sender_chat.type == "channel" and forwarded.from_user
    assert forwarded.from_user.id == ChatID.SERVICE_CHAT
    assert document and document.document and document.document.mime_type == "application/pdf"
    assert document.document.file_name == "brief.pdf"
    file = await bot.get_file(document.document.file_id)
    assert bytes(await file.download_as_bytearray()) == b"%PDF-1.7"


async def test_get_chat_member_can_answer_slowly(sim_bot: tuple[TelegramSimulator, Bot]) -> None:
    sim, bot = sim_bot
    sim.member_lookup_seconds = 0.2
    started = asyncio.get_running_loop().time()
    member = await bot.get_chat_member(GROUP, 5)
    assert member.status == "member" and asyncio.get_running_loop().time() - started >= 0.2
