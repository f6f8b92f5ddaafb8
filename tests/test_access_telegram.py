"""Access control through the real Telegram adapter: who sees a job, who is charged, the queue cap under a burst.

Each test drives python-telegram-bot against the Bot API simulator; no Invocation is built by hand.
"""

from __future__ import annotations

import asyncio

import pytest

from tests.reliability_support import JOB_ID
from tests.test_telegram_support import GROUP, PRIVATE, Bench, bench, keyboard_message

pytestmark = pytest.mark.telegram
__all__ = ["bench"]

OWNER, MALLORY, GROUP_ADMIN, BOT_ADMIN = PRIVATE, 7, 1, 99  # GROUP's admin is 1
ACCESS = {"access": {"bot_admins": [f"telegram:{BOT_ADMIN}"]}}


async def said(bench: Bench, chat_id: int, user_id: int, text: str) -> str:
    """Send a command and return the text (or caption) of the bot's first message after it."""
    sent = await bench.sim.send_text(chat_id, user_id, text)
    found: list[str] = []

    def answered() -> bool:
        for message in bench.sim.visible(chat_id):
            if message.message_id > sent.message_id:
                found.append(message.text or message.caption or "")
                return True
        return False

    await bench.sim.wait_for(answered)
    return found[0]


async def pressed(bench: Bench, chat_id: int, user_id: int, message_id: int, data: str) -> str:
    query = await bench.sim.press(chat_id, user_id, message_id, data)
    await bench.sim.wait_for(lambda: query in bench.sim.callback_answers)
    return str(bench.sim.callback_answers[query].get("text", ""))


async def job_count(bench: Bench, state: str | None = None) -> int:
    assert bench.app is not None
    sql = "SELECT COUNT(*) FROM jobs" + (" WHERE state = ?" if state else "")
    row = await bench.app.db.fetchone(sql, (state,) if state else ())
    return int(row[0]) if row else -1


async def test_a_private_job_is_seen_only_by_its_owner_its_chat_and_bot_admins(bench: Bench) -> None:
    bench.overrides = ACCESS
    await bench.open()
    job = await bench.imagine(PRIVATE, OWNER, "/imagine my secret lighthouse")
    assert "no job" in await said(bench, GROUP, MALLORY, f"/show {job}")
    assert not any(job in data for m in bench.sim.visible(GROUP) for data in m.buttons), "nothing was posted"

    # The owner shows it in the group: the group sees the image, but its buttons are not theirs to press.
    await said(bench, GROUP, OWNER, f"/show {job}")
    shown = keyboard_message(bench, GROUP, job)
    rows = await job_count(bench)
    for data in (f"info:{job}", f"reroll:{job}", f"vary:{job}:0", f"upscale:{job}:0", f"delete:{job}"):
        answer = await pressed(bench, GROUP, MALLORY, shown.message_id, data)
        assert "no job" in answer and "lighthouse" not in answer, data
    assert await job_count(bench) == rows, "no reroll, variation or upscale of someone else's private job"
    assert not shown.deleted and not any("Prompt:" in (m.text or "") for m in bench.sim.visible(GROUP))

    # The bot's admins see every job; the owner's own chat still works.
    assert job in await said(bench, GROUP, BOT_ADMIN, f"/show {job}")
    assert job in await said(bench, PRIVATE, OWNER, f"/show {job}")


async def test_a_group_admin_is_charged_and_cannot_raise_quotas(bench: Bench) -> None:
    bench.overrides = {**ACCESS, "quota": {"user_daily": 10.0, "server_daily": 1000.0}}  # one sd15 job (6.55) a day
    await bench.open()
    first = await bench.imagine(GROUP, GROUP_ADMIN, "/imagine a fresh group's first job --preset sd15")
    refused = await said(bench, GROUP, GROUP_ADMIN, "/imagine and a second one --preset sd15")
    assert "daily quota" in refused and not JOB_ID.search(refused)
    assert bench.app is not None
    charged = await bench.app.db.fetchall("SELECT job_id FROM quota_ledger WHERE user_id = ?", (str(GROUP_ADMIN),))
    assert [row[0] for row in charged] == [first], "a chat admin's job is on the ledger like anyone's"

    for text in (
        f"/admin quota user {GROUP_ADMIN} 1e9",
        f"/admin quota user {GROUP_ADMIN} 1000",
        "/admin quota server 100000",
    ):
        answer = await said(bench, GROUP, GROUP_ADMIN, text)
        assert "bot's admins" in answer or "from 0 to 1,000,000" in answer, (text, answer)
    assert "Telegram has no roles" in await said(bench, GROUP, GROUP_ADMIN, "/admin quota role everyone 1")
    for text in ("/admin quota user 1 nan", "/admin quota user 1 inf", "/admin quota user 1 -1"):
        assert "from 0 to 1,000,000" in await said(bench, GROUP, BOT_ADMIN, text), text
    assert "from 0 to 1,000,000" in await said(bench, GROUP, BOT_ADMIN, "/admin quota server 1e9")
    assert "5" in await said(bench, GROUP, GROUP_ADMIN, f"/admin quota user {OWNER} 5"), "lowering is the chat's call"
    server = await bench.app.services.accounts.server("telegram", str(GROUP))
    assert server.daily_limit is None and server.user_limits == {str(OWNER): 5.0} and not server.role_limits

    # A bot admin may raise them, and is counted but not limited.
    raised = await said(bench, GROUP, BOT_ADMIN, f"/admin quota user {GROUP_ADMIN} 2000")
    assert "2000" in raised and "bot's admins" not in raised
    await bench.imagine(GROUP, BOT_ADMIN, "/imagine one --preset sd15")
    await bench.imagine(GROUP, BOT_ADMIN, "/imagine two --preset sd15")


async def test_the_queue_cap_holds_under_a_burst(bench: Bench) -> None:
    bench.overrides = {"limits": {"max_queued_per_user": 5, "retry_backoff_seconds": 0}}
    bench.backend.hold = True
    await bench.open()
    sent = await asyncio.gather(*(bench.sim.send_text(PRIVATE, OWNER, f"/imagine burst {i}") for i in range(15)))
    last = max(message.message_id for message in sent)
    # Every command is answered: with a job (queued) or with the cap's refusal.
    await bench.sim.wait_for(lambda: sum(m.message_id > last for m in bench.sim.visible(PRIVATE)) >= 15, 20)
    answers = [m.text or "" for m in bench.sim.visible(PRIVATE) if m.message_id > last]
    refusals = sum("the limit is 5" in text for text in answers)
    # One job may be running (the backend holds it); at most five may wait.
    assert await job_count(bench, "queued") <= 5
    assert await job_count(bench) <= 6 and refusals >= 9
    bench.backend.release.set()
