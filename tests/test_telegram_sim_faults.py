"""The faulty Telegram simulator answers like the real Bot API, seen through a raw PTB `Bot`."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from telegram import Bot, InputMediaPhoto
from telegram.error import BadRequest, ChatMigrated, Forbidden, NetworkError
from telegram.request import HTTPXRequest

from simulators.telegram_faults import FaultyTelegramSimulator
from tests.fakes import png

pytestmark = pytest.mark.telegram


@pytest.fixture
async def sim() -> AsyncIterator[FaultyTelegramSimulator]:
    simulator = FaultyTelegramSimulator()
    await simulator.start()
    simulator.add_chat(42)
    simulator.add_chat(-1001, title="supergroup")
    simulator.add_group(-55, title="basic group")
    yield simulator
    await simulator.stop()


@pytest.fixture
async def bot(sim: FaultyTelegramSimulator, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Bot]:
    monkeypatch.setenv("PTB_TIMEDELTA", "true")
    client = Bot(sim.token, base_url=sim.api_base_url, request=HTTPXRequest(read_timeout=2))
    async with client:
        yield client


async def test_albums_take_one_to_ten_items(sim: FaultyTelegramSimulator, bot: Bot) -> None:
    sim.flood.enabled = False  # flood limits have tests of their own
    single = await bot.send_media_group(42, [InputMediaPhoto(png(32, 32))])
    assert len(single) == 1 and single[0].media_group_id is None  # one item goes as a plain photo
    four = await bot.send_media_group(42, [InputMediaPhoto(png(32, 32)) for _ in range(4)])
    assert len({m.media_group_id for m in four}) == 1
    with pytest.raises(BadRequest, match=r"(?i)too many messages to send as an album"):
        await bot.send_media_group(42, [InputMediaPhoto(png(32, 32)) for _ in range(11)])


async def test_upgraded_group_answers_with_its_new_id(sim: FaultyTelegramSimulator, bot: Bot) -> None:
    new_id = await sim.upgrade(-55)
    with pytest.raises(ChatMigrated) as raised:
        await bot.send_message(-55, "hello")
    assert raised.value.new_chat_id == new_id and str(new_id).startswith("-100")
    assert (await bot.send_message(new_id, "hello")).chat.type == "supergroup"


async def test_removed_and_blocked_answer_403_and_tell_the_bot(sim: FaultyTelegramSimulator, bot: Bot) -> None:
    await sim.kick(-1001)
    await sim.kick(-55)
    await sim.block(42)
    for chat, text in (
        (-1001, "bot was kicked from the supergroup chat"),
        (-55, "bot was kicked from the group chat"),
        (42, "bot was blocked by the user"),
    ):
        with pytest.raises(Forbidden, match=text):
            await bot.send_message(chat, "hello")
    updates = await bot.get_updates(timeout=0, allowed_updates=["my_chat_member"])
    statuses = {u.my_chat_member.chat.id: u.my_chat_member.new_chat_member.status for u in updates if u.my_chat_member}
    assert statuses == {-1001: "kicked", -55: "left", 42: "kicked"}


async def test_lost_and_slow_answers_after_the_call_took_effect(sim: FaultyTelegramSimulator, bot: Bot) -> None:
    sim.lose["sendmessage"] = 1
    with pytest.raises(NetworkError) as lost:
        await bot.send_message(42, "lost answer")
    assert isinstance(lost.value.__cause__, httpx.RemoteProtocolError)
    sim.slow["sendmessage"] = 3.0
    with pytest.raises(NetworkError, match="Timed out"):
        await bot.send_message(42, "slow answer")
    assert [m.text for m in sim.visible(42)] == ["lost answer", "slow answer"], "both were posted"


async def test_mentions_formatting_and_foreign_messages(sim: FaultyTelegramSimulator, bot: Bot) -> None:
    sent = await bot.send_message(-1001, "hi @alice_x, not @a nor x@y")
    assert [e.type for e in sent.entities] == ["mention"] and sim.mentions(-1001) == ["@alice_x"]
    quiet = await bot.send_message(-1001, "hi @\u2060alice_x")
    assert not quiet.entities
    with pytest.raises(BadRequest, match=r"(?i)parse_mode"):
        await bot.send_message(-1001, "<b>x</b>", parse_mode="HTML")
    theirs = await sim.send_text(-1001, 5, "/imagine@test_bot mine")
    with pytest.raises(BadRequest, match="can't be edited"):
        await bot.edit_message_text("taken", chat_id=-1001, message_id=theirs.message_id)
