"""The Telegram simulator answers a message to a user's private chat as the Bot API does: 403 "bot can't initiate
conversation with a user" until the user has started the bot, 400 "chat not found" for an id it never saw."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from telegram import Bot
from telegram.error import BadRequest, Forbidden

from simulators.telegram import TelegramSimulator
from tests.fakes import png

GROUP = -1001
USER = 77


@pytest.fixture
async def sim_bot() -> AsyncIterator[tuple[TelegramSimulator, Bot]]:
    sim = TelegramSimulator()
    await sim.start()
    sim.add_chat(GROUP, title="artists")
    bot = Bot(sim.token, base_url=sim.api_base_url, base_file_url=sim.file_base_url)
    async with bot:
        yield sim, bot
    await sim.stop()


@pytest.mark.telegram
async def test_a_user_who_never_started_the_bot_cannot_be_written_to(sim_bot: tuple[TelegramSimulator, Bot]) -> None:
    sim, bot = sim_bot
    await sim.send_text(GROUP, USER, "hello")  # known to Telegram from the group, no private chat yet
    with pytest.raises(Forbidden, match="bot can't initiate conversation with a user"):
        await bot.send_message(USER, "your image")
    with pytest.raises(Forbidden, match="bot can't initiate conversation with a user"):
        await bot.send_photo(USER, png(8, 8))
    with pytest.raises(BadRequest, match="Chat not found"):
        await bot.send_message(78, "nobody")
    sim.add_chat(USER)  # the user pressed Start
    sent = await bot.send_message(USER, "your image")
    assert sent.chat.id == USER


@pytest.mark.telegram
async def test_start_opens_the_private_chat_and_unblocks_with_a_member_update() -> None:
    from simulators.telegram_faults import FaultyTelegramSimulator

    sim = FaultyTelegramSimulator()
    await sim.start()
    try:
        sim.add_chat(GROUP, title="artists")
        await sim.send_text(GROUP, USER, "hello")
        bot = Bot(sim.token, base_url=sim.api_base_url, base_file_url=sim.file_base_url)
        async with bot:
            start = await sim.press_start(USER, "show_abc")  # the t.me link's Start button
            assert start.text == "/start show_abc" and sim.chats[USER]["type"] == "private"
            assert (await bot.send_message(USER, "your image")).chat.id == USER
            await sim.block(USER)
            with pytest.raises(Forbidden, match="bot was blocked by the user"):
                await bot.send_message(USER, "your image")
            await sim.press_start(USER, "show_abc")  # Restart: unblocked first (my_chat_member), then /start
            statuses = [u["my_chat_member"]["new_chat_member"]["status"] for u in sim._updates if "my_chat_member" in u]
            assert statuses == ["kicked", "member"]
            assert (await bot.send_message(USER, "your image")).chat.id == USER
    finally:
        await sim.stop()
