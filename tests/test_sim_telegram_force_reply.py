"""The Telegram simulator takes ForceReply and mentions as the Bot API does, checked with the real
python-telegram-bot: a selective ForceReply opens a reply for the users it mentions (text_mention or @username)
and the sender of the message it replies to; a malformed markup is "can't parse reply keyboard markup JSON
object"; the edit methods take only inline keyboards; a user's reply to the prompt reaches the bot in a group
with privacy mode, carrying the prompt as `reply_to_message`."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from telegram import Bot, ForceReply, InlineKeyboardButton, InlineKeyboardMarkup, MessageEntity, User
from telegram.error import BadRequest

from simulators.telegram import TelegramSimulator

pytestmark = pytest.mark.telegram

GROUP, ALICE, BOB = -1001, 5, 6


@pytest.fixture
async def sim_bot() -> AsyncIterator[tuple[TelegramSimulator, Bot]]:
    sim = TelegramSimulator()
    await sim.start()
    sim.add_chat(GROUP, title="artists")
    sim.flood.enabled = False  # flood control has tests of its own
    bot = Bot(sim.token, base_url=sim.api_base_url, base_file_url=sim.file_base_url)
    async with bot:
        yield sim, bot
    await sim.stop()


def mention(user_id: int, text: str, name: str) -> MessageEntity:
    offset = len(text[: text.index(name)].encode("utf-16-le")) // 2
    user = User(user_id, name, is_bot=False)
    return MessageEntity(MessageEntity.TEXT_MENTION, offset, len(name.encode("utf-16-le")) // 2, user=user)


async def test_a_selective_force_reply_targets_the_mentioned_user(sim_bot: tuple[TelegramSimulator, Bot]) -> None:
    sim, bot = sim_bot
    text = "Ålice, what should change?"
    sent = await bot.send_message(
        GROUP, text, entities=[mention(ALICE, text, "Ålice")],
        reply_markup=ForceReply(selective=True, input_field_placeholder="e.g. make it night"),
    )  # fmt: skip
    prompt = sim.messages[(GROUP, sent.message_id)]
    assert sim.forced_reply_for(prompt) == {ALICE}
    assert sent.entities[0].user is not None and sent.entities[0].user.id == ALICE
    await sim.send_text(GROUP, BOB, "hi")  # Bob is known by @user6
    by_name = await bot.send_message(GROUP, "@user6 and you?", reply_markup=ForceReply(selective=True))
    assert sim.forced_reply_for(sim.messages[(GROUP, by_name.message_id)]) == {BOB}
    everyone = await bot.send_message(GROUP, "anyone?", reply_markup=ForceReply())
    assert sim.forced_reply_for(sim.messages[(GROUP, everyone.message_id)]) is None
    asked = await sim.send_text(GROUP, BOB, "/imagine@test_bot x")
    answer = await bot.send_message(
        GROUP, "which one?", reply_to_message_id=asked.message_id, reply_markup=ForceReply(selective=True)
    )
    assert sim.forced_reply_for(sim.messages[(GROUP, answer.message_id)]) == {BOB}


async def test_bad_markups_and_entities_are_refused(sim_bot: tuple[TelegramSimulator, Bot]) -> None:
    sim, bot = sim_bot
    with pytest.raises(BadRequest, match=r"(?i)can't parse reply keyboard markup json object"):
        await bot.send_message(GROUP, "x", reply_markup=ForceReply(input_field_placeholder="p" * 65))
    sent = await bot.send_message(GROUP, "x")
    with pytest.raises(BadRequest, match=r"(?i)can't parse reply keyboard markup json object"):
        await bot.edit_message_text("y", GROUP, sent.message_id, reply_markup=ForceReply())  # type: ignore[arg-type]
    keys = InlineKeyboardMarkup([[InlineKeyboardButton("Edit", callback_data="edit:abc:0")]])
    await bot.edit_message_text("y", GROUP, sent.message_id, reply_markup=keys)
    with pytest.raises(BadRequest, match=r"(?i)beyond the end"):
        await bot.send_message(GROUP, "Al", entities=[MessageEntity("text_mention", 0, 5, user=User(1, "A", False))])
    with pytest.raises(BadRequest, match=r"(?i)not modelled"):
        await bot.send_message(GROUP, "bold", entities=[MessageEntity("bold", 0, 4)])
    assert [name for name, _, _ in sim.errors] == ["sendMessage", "editMessageText", "sendMessage", "sendMessage"]


async def test_a_reply_to_the_prompt_reaches_the_bot_in_a_private_mode_group(
    sim_bot: tuple[TelegramSimulator, Bot],
) -> None:
    sim, bot = sim_bot
    prompt = await bot.send_message(GROUP, "what should change?", reply_markup=ForceReply(selective=True))
    await sim.send_text(GROUP, ALICE, "make it night", reply_to=prompt.message_id)
    await sim.send_text(GROUP, BOB, "just chatting")  # privacy mode: not for the bot
    async with asyncio.timeout(5):
        updates = await bot.get_updates(timeout=1)
    assert [update.message.text for update in updates if update.message] == ["make it night"]
    replied = updates[0].message.reply_to_message if updates[0].message else None
    assert replied is not None and replied.message_id == prompt.message_id and replied.from_user is not None
    assert replied.from_user.id == sim.bot_id and replied.reply_markup is None  # a Message shows inline keyboards only
