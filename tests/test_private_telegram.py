"""Private results on Telegram, through the real python-telegram-bot against the (faulty) Bot API simulator:
the result goes to the user's private chat (chat id = user id), the group sees only a notice; a private chat the
bot may not write to holds the result until the user presses Start on the t.me deep link."""

from __future__ import annotations

import pytest

from bot.models import JobState
from simulators.telegram_faults import FORBIDDEN_BLOCKED
from simulators.telegram_state import ChatMessage
from tests.edit_support import FakeEditor, edit_overrides
from tests.fakes import png
from tests.private_support import PreviewBackend
from tests.telegram_faults_support import FaultBench, fbench
from tests.test_telegram_support import GROUP, PRIVATE

pytestmark = pytest.mark.telegram
__all__ = ["fbench"]

SHY = 5  # a group member who never started the bot: Telegram knows them, no private chat exists


def said(message: ChatMessage) -> str:
    return message.text or message.caption or ""


def bot_texts(fbench: FaultBench, chat_id: int) -> list[str]:
    return [said(m) for m in fbench.sim.visible(chat_id) if m.from_bot]


def group_calls(fbench: FaultBench) -> list[tuple[str, dict[str, object]]]:
    return [(name, fields) for name, fields in fbench.sim.calls if str(fields.get("chat_id")) == str(GROUP)]


def sends_to(fbench: FaultBench, method: str, chat_id: int) -> int:
    return sum(1 for name, fields in fbench.sim.calls if name == method and str(fields.get("chat_id")) == str(chat_id))


async def test_a_private_result_goes_to_the_private_chat_and_the_group_sees_only_that_it_is_done(
    fbench: FaultBench,
) -> None:
    fbench.backend = PreviewBackend(hold=True)
    await fbench.open()
    await fbench.sim.send_text(GROUP, PRIVATE, "/imagine@test_bot a secret heron --private")
    job_id = await fbench.job_from(GROUP)
    # The status message follows the job (queued, then progress) without the prompt and without the preview.
    await fbench.sim.wait_for(lambda: any("25%" in text and job_id in text for text in bot_texts(fbench, GROUP)))
    await fbench.sim.send_text(GROUP, 6, "/queue@test_bot")  # what runs here, as the group sees it
    await fbench.sim.wait_for(lambda: any("in all" in text for text in bot_texts(fbench, GROUP)))
    fbench.backend.release.set()
    await fbench.finished(job_id)

    group = bot_texts(fbench, GROUP)
    assert not any("secret heron" in str(fields) for _, fields in group_calls(fbench)), group  # never, not once
    assert any(f"Job {job_id} for user{PRIVATE} is done: sent to them privately" in text for text in group), group
    assert fbench.sim.bot_photos(GROUP) == [] and sends_to(fbench, "editMessageMedia", GROUP) == 0
    assert not any(m.buttons for m in fbench.sim.visible(GROUP) if m.from_bot)  # not even Cancel is left
    photos = fbench.sim.bot_photos(PRIVATE)
    assert len(photos) == 1 and "secret heron" in said(photos[0]) and f"reroll:{job_id}" in photos[0].buttons
    assert fbench.delivery(job_id) == "delivered" and fbench.ledger(job_id) == "settled"


async def test_the_setting_makes_results_private_and_the_flag_overrides_it(fbench: FaultBench) -> None:
    await fbench.open()
    await fbench.sim.send_text(GROUP, PRIVATE, "/settings@test_bot private on")
    await fbench.sim.wait_for(lambda: any("Private results: on" in text for text in bot_texts(fbench, GROUP)))
    quiet = await fbench.imagine(GROUP, PRIVATE, "/imagine@test_bot a quiet heron")
    loud = await fbench.imagine(GROUP, PRIVATE, "/imagine@test_bot a loud heron --private=no")
    in_group = [said(m) for m in fbench.sim.bot_photos(GROUP)]
    in_private = [said(m) for m in fbench.sim.bot_photos(PRIVATE)]
    assert any(loud in text for text in in_group) and not any(quiet in text for text in in_group)
    assert any(quiet in text for text in in_private) and not any(loud in text for text in in_private)

    panel = next(m for m in fbench.sim.visible(GROUP) if "Private results: on" in said(m))
    await fbench.sim.press(GROUP, PRIVATE, panel.message_id, "set:private:1")  # the toggle: off again
    await fbench.sim.wait_for(lambda: any("Private results: off" in text for text in bot_texts(fbench, GROUP)))
    public = await fbench.imagine(GROUP, PRIVATE, "/imagine@test_bot a public heron")
    assert any(public in said(m) for m in fbench.sim.bot_photos(GROUP))


async def test_a_user_who_never_started_the_bot_gets_a_deep_link_and_the_result_after_start(
    fbench: FaultBench,
) -> None:
    await fbench.open()
    job_id = await fbench.imagine(GROUP, SHY, "/imagine@test_bot a shy heron --private")
    link = f"https://t.me/test_bot?start=show_{job_id}"
    notice = next(text for text in bot_texts(fbench, GROUP) if job_id in text)
    assert link in notice and "press Start" in notice and "shy heron" not in notice, notice
    assert fbench.delivery(job_id) == "held" and fbench.ledger(job_id) == "settled"  # kept, and charged
    tries = sends_to(fbench, "sendMessage", SHY) + sends_to(fbench, "sendPhoto", SHY)  # its status, or the result
    assert tries == 1 and fbench.sim.bot_photos(GROUP) == []  # one refusal, then nothing more is tried
    for _ in range(3):  # the delivery sweep does not hammer a chat that refuses the bot
        await fbench.app.engine.deliver_pending()  # type: ignore[union-attr]
    assert sends_to(fbench, "sendMessage", SHY) + sends_to(fbench, "sendPhoto", SHY) == tries

    await fbench.sim.press_start(SHY, f"show_{job_id}")
    await fbench.sim.wait_for(lambda: bool(fbench.sim.bot_photos(SHY)))
    photo = fbench.sim.bot_photos(SHY)[0]
    assert "shy heron" in said(photo) and f"upscale:{job_id}:0" in photo.buttons
    await fbench.sim.wait_for(lambda: fbench.delivery(job_id) == "delivered")


async def test_a_dm_blocked_by_the_user_holds_the_result_and_cancels_nothing_in_the_group(
    fbench: FaultBench,
) -> None:
    fbench.backend.hold = True
    await fbench.open()
    fbench.sim.gone[PRIVATE] = FORBIDDEN_BLOCKED  # blocked; the my_chat_member update has not arrived yet
    await fbench.sim.send_text(GROUP, PRIVATE, "/imagine@test_bot a blocked heron --private")
    private_job = await fbench.job_from(GROUP)
    sent = await fbench.sim.send_text(GROUP, PRIVATE, "/imagine@test_bot a group heron")
    group_job = await fbench.job_from(GROUP, after=sent.message_id)
    assert group_job != private_job
    fbench.backend.release.set()
    await fbench.finished(private_job)
    await fbench.finished(group_job)

    assert fbench.delivery(private_job) == "held"
    notice = next(text for text in bot_texts(fbench, GROUP) if private_job in text)
    assert "unblock the bot" in notice and f"start=show_{private_job}" in notice
    stored = await fbench.app.services.store.get(group_job)  # type: ignore[union-attr]
    assert stored is not None and stored.state is JobState.SUCCEEDED  # the user's 403 is not the group's
    assert fbench.delivery(group_job) == "delivered" and len(fbench.sim.bot_photos(GROUP)) == 1

    await fbench.sim.press_start(PRIVATE, f"show_{private_job}")  # Restart: unblocks, then /start show_…
    await fbench.sim.wait_for(lambda: any("blocked heron" in said(m) for m in fbench.sim.bot_photos(PRIVATE)))


async def test_show_and_history_in_the_group_keep_a_private_job_private(fbench: FaultBench) -> None:
    await fbench.open()
    job_id = await fbench.imagine(GROUP, PRIVATE, "/imagine@test_bot a secret heron --private")
    assert len(fbench.sim.bot_photos(PRIVATE)) == 1

    await fbench.sim.send_text(GROUP, PRIVATE, f"/show@test_bot {job_id}")  # the owner: sent to them again
    await fbench.sim.wait_for(lambda: len(fbench.sim.bot_photos(PRIVATE)) == 2)
    await fbench.sim.wait_for(lambda: any("I sent it to you" in text for text in bot_texts(fbench, GROUP)))
    await fbench.sim.send_text(GROUP, 6, f"/show@test_bot {job_id}")  # someone else: only that it is private
    await fbench.sim.wait_for(lambda: any("only its owner sees it" in text for text in bot_texts(fbench, GROUP)))
    result = next(m for m in fbench.sim.visible(PRIVATE) if f"info:{job_id}" in m.buttons)
    press = await fbench.sim.press_forged(GROUP, 6, result.message_id, f"info:{job_id}")  # forged, in the group
    await fbench.sim.wait_for(lambda: press in fbench.sim.callback_answers)
    assert "is private" in str(fbench.sim.callback_answers[press]), fbench.sim.callback_answers[press]
    await fbench.sim.send_text(GROUP, PRIVATE, "/history@test_bot")
    await fbench.sim.wait_for(lambda: any("Your recent jobs" in text for text in bot_texts(fbench, GROUP)))
    assert fbench.sim.bot_photos(GROUP) == []
    assert not any("secret heron" in text for text in bot_texts(fbench, GROUP))
    assert not any("secret heron" in str(answer) for answer in fbench.sim.callback_answers.values())

    await fbench.sim.send_text(PRIVATE, PRIVATE, "/history")  # in the private chat it is all there
    await fbench.sim.wait_for(lambda: any("secret heron" in t and "recent" in t for t in bot_texts(fbench, PRIVATE)))


async def test_a_private_job_stays_private_across_a_restart(fbench: FaultBench) -> None:
    fbench.backend.hold = True
    await fbench.open()
    await fbench.sim.send_text(GROUP, PRIVATE, "/imagine@test_bot a patient heron --private")
    job_id = await fbench.job_from(GROUP)
    await fbench.sim.wait_for(lambda: fbench.backend.started.is_set())
    fbench.backend = PreviewBackend()  # the next process's backend
    await fbench.restart()
    await fbench.finished(job_id)
    assert any("patient heron" in said(m) for m in fbench.sim.bot_photos(PRIVATE))
    assert fbench.sim.bot_photos(GROUP) == [] and sends_to(fbench, "editMessageMedia", GROUP) == 0
    assert not any("patient heron" in text for text in bot_texts(fbench, GROUP))
    assert any("sent to them privately" in text for text in bot_texts(fbench, GROUP))


async def test_the_bot_removed_from_the_group_still_delivers_a_private_result_there_was_to_make(
    fbench: FaultBench,
) -> None:
    fbench.backend.hold = True
    await fbench.open()
    await fbench.sim.send_text(GROUP, 6, "/imagine@test_bot a public heron")
    public_job = await fbench.job_from(GROUP)  # running, held
    sent = await fbench.sim.send_text(GROUP, PRIVATE, "/imagine@test_bot a loyal heron --private")
    private_job = await fbench.job_from(GROUP, after=sent.message_id)  # waiting behind it
    await fbench.sim.wait_for(lambda: fbench.backend.started.is_set())
    await fbench.sim.kick(GROUP)  # the group is gone: its jobs are cancelled, but not the private one
    await fbench.finished(public_job)
    await fbench.finished(private_job)  # it still runs, and its result reaches the private chat

    assert any("loyal heron" in said(m) for m in fbench.sim.bot_photos(PRIVATE))
    assert fbench.delivery(private_job) == "delivered" and fbench.ledger(private_job) == "settled"
    cancelled = await fbench.app.services.store.get(public_job)  # type: ignore[union-attr]
    assert cancelled is not None and cancelled.state is JobState.CANCELLED and fbench.ledger(public_job) == "refunded"


async def test_a_private_album_arrives_whole_in_the_private_chat_and_delete_there_removes_it(
    fbench: FaultBench,
) -> None:
    await fbench.open()
    job_id = await fbench.imagine(GROUP, PRIVATE, "/imagine@test_bot two secret herons --n 2 --private")
    photos = fbench.sim.bot_photos(PRIVATE)
    assert len(photos) == 2 and len({m.media_group_id for m in photos}) == 1 and fbench.sim.bot_photos(GROUP) == []
    keyboard = next(m for m in fbench.sim.visible(PRIVATE) if f"delete:{job_id}" in m.buttons)
    await fbench.sim.press(PRIVATE, PRIVATE, keyboard.message_id, f"delete:{job_id}")
    await fbench.sim.wait_for(lambda: fbench.sim.bot_photos(PRIVATE) == [])


async def test_an_edit_can_be_private_too(fbench: FaultBench) -> None:
    fbench.overrides = {**fbench.overrides, **edit_overrides()}
    fbench.more_backends = lambda: [FakeEditor()]
    await fbench.open()
    photo = await fbench.sim.send_photo(GROUP, PRIVATE, png(96, 64))
    sent = await fbench.sim.send_text(GROUP, PRIVATE, "/edit@test_bot make it night --private", photo.message_id)
    job_id = await fbench.job_from(GROUP, sent.message_id)
    await fbench.finished(job_id)
    assert any("make it night" in said(m) for m in fbench.sim.bot_photos(PRIVATE))
    assert fbench.sim.bot_photos(GROUP) == [] and not any("make it night" in t for t in bot_texts(fbench, GROUP))
    assert any("sent to them privately" in text for text in bot_texts(fbench, GROUP))


async def test_the_edit_button_of_a_private_result_edits_in_the_private_chat(fbench: FaultBench) -> None:
    fbench.overrides = {**fbench.overrides, **edit_overrides()}
    editor = FakeEditor()
    fbench.more_backends = lambda: [editor]
    await fbench.open()
    await fbench.sim.send_text(GROUP, PRIVATE, "/imagine@test_bot a secret heron --private")
    job_id = await fbench.job_from(GROUP)
    await fbench.finished(job_id)
    keys = next(m for m in fbench.sim.visible(PRIVATE) if f"edit:{job_id}:0" in m.buttons)
    before = max(m.message_id for m in fbench.sim.visible(PRIVATE))
    query = await fbench.sim.press(PRIVATE, PRIVATE, keys.message_id, f"edit:{job_id}:0")
    await fbench.sim.wait_for(lambda: query in fbench.sim.callback_answers)
    prompt = next(m for m in fbench.sim.visible(PRIVATE) if m.message_id > before and m.from_bot)
    sent = await fbench.sim.send_text(PRIVATE, PRIVATE, "make it night", reply_to=prompt.message_id)
    edit_id = await fbench.job_from(PRIVATE, sent.message_id)
    await fbench.finished(edit_id)
    assert editor.edits and editor.edits[0][1].parent_job_id == job_id
    assert any("make it night" in said(m) for m in fbench.sim.bot_photos(PRIVATE))
    assert not any("make it night" in str(fields) or "heron" in str(fields) for _, fields in group_calls(fbench))
