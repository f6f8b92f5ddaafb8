"""A private job's progress on Telegram, through the real python-telegram-bot against the faulty Bot API simulator:
the owner's private chat gets a status message (queued, then progress with its preview) that the result replaces,
the group never sees the prompt or a preview, a restart edits the same private message, and a private chat that
refuses the bot is tried once."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from bot.models import GeneratedImage, GenerationRequest, GenerationResult, Progress
from bot.ports import ProgressCallback
from simulators.telegram_faults import FORBIDDEN_BLOCKED
from simulators.telegram_state import ChatMessage
from tests.fakes import FakeBackend, png
from tests.private_support import PreviewBackend
from tests.telegram_faults_support import FaultBench, fbench
from tests.test_private_telegram import SHY, bot_texts, group_calls, said, sends_to
from tests.test_telegram_support import GROUP, PRIVATE

__all__ = ["fbench"]


def dm_status(fbench: FaultBench, job_id: str, chat_id: int = PRIVATE) -> ChatMessage | None:
    """The bot's status message for the job in the private chat (the one with its Cancel button)."""
    return next((m for m in fbench.sim.visible(chat_id) if m.from_bot and f"cancel:{job_id}" in m.buttons), None)


def dm_calls(fbench: FaultBench, chat_id: int) -> int:
    return sum(1 for _, fields in fbench.sim.calls if str(fields.get("chat_id")) == str(chat_id))


async def test_the_private_chat_follows_the_job_and_the_result_replaces_its_status(fbench: FaultBench) -> None:
    fbench.backend = PreviewBackend(hold=True)
    await fbench.open()
    await fbench.sim.send_text(GROUP, PRIVATE, "/imagine@test_bot a secret heron --private")
    job_id = await fbench.job_from(GROUP)

    def previewing() -> bool:
        status = dm_status(fbench, job_id)
        return status is not None and status.photo is not None and "25%" in said(status)

    await fbench.sim.wait_for(previewing)  # progress, with its preview, in the private chat only
    status = dm_status(fbench, job_id)
    assert status is not None and "secret heron" in said(status) and status.edits >= 1
    assert sends_to(fbench, "sendMessage", PRIVATE) == 1  # one status message, edited
    fbench.backend.release.set()
    await fbench.finished(job_id)

    assert status.deleted  # the result replaces it, as in a group
    photos = fbench.sim.bot_photos(PRIVATE)
    assert len(photos) == 1 and "secret heron" in said(photos[0]) and f"reroll:{job_id}" in photos[0].buttons
    assert not any("secret heron" in str(fields) for _, fields in group_calls(fbench))
    assert fbench.sim.bot_photos(GROUP) == [] and sends_to(fbench, "editMessageMedia", GROUP) == 0
    assert any("sent to them privately" in text for text in bot_texts(fbench, GROUP))


async def test_a_restart_edits_the_same_private_status(fbench: FaultBench) -> None:
    fbench.backend = PreviewBackend(hold=True)
    await fbench.open()
    await fbench.sim.send_text(GROUP, PRIVATE, "/imagine@test_bot a patient heron --private")
    job_id = await fbench.job_from(GROUP)
    await fbench.sim.wait_for(lambda: "25%" in said(dm_status(fbench, job_id) or ChatMessage(0, 0, True, 0)))
    first = dm_status(fbench, job_id)
    assert first is not None
    edits = first.edits

    fbench.backend = PreviewBackend(hold=True)  # the next process runs it again
    await fbench.restart()
    await fbench.sim.wait_for(lambda: first.edits > edits)  # the same message, edited again
    assert sends_to(fbench, "sendMessage", PRIVATE) == 1
    fbench.backend.release.set()
    await fbench.finished(job_id)
    assert first.deleted and any("patient heron" in said(m) for m in fbench.sim.bot_photos(PRIVATE))


async def test_a_private_chat_that_refuses_the_bot_is_tried_once_and_the_job_runs(fbench: FaultBench) -> None:
    fbench.backend = PreviewBackend(hold=True)
    await fbench.open()
    fbench.sim.gone[PRIVATE] = FORBIDDEN_BLOCKED
    await fbench.sim.send_text(GROUP, SHY, "/imagine@test_bot a shy heron --private")
    shy_job = await fbench.job_from(GROUP)
    sent = await fbench.sim.send_text(GROUP, PRIVATE, "/imagine@test_bot a blocked heron --private")
    blocked_job = await fbench.job_from(GROUP, after=sent.message_id)
    await fbench.sim.wait_for(lambda: any("25%" in text and shy_job in text for text in bot_texts(fbench, GROUP)))
    await fbench.sim.wait_for(lambda: dm_calls(fbench, SHY) == 1 and dm_calls(fbench, PRIVATE) == 1)
    fbench.backend.release.set()
    await fbench.finished(shy_job)
    await fbench.finished(blocked_job)

    assert dm_calls(fbench, SHY) == 1 and dm_calls(fbench, PRIVATE) == 1  # their statuses, refused: nothing more
    for job_id, why in ((shy_job, "press Start"), (blocked_job, "unblock the bot")):
        assert fbench.delivery(job_id) == "held"
        notice = next(text for text in bot_texts(fbench, GROUP) if job_id in text)
        assert why in notice and f"start=show_{job_id}" in notice, notice
    assert not any("heron" in str(fields) for _, fields in group_calls(fbench))


async def test_cancel_in_the_private_chat_ends_its_status_there_too(fbench: FaultBench) -> None:
    fbench.backend = PreviewBackend(hold=True)
    await fbench.open()
    await fbench.sim.send_text(GROUP, PRIVATE, "/imagine@test_bot a fickle heron --private")
    job_id = await fbench.job_from(GROUP)
    await fbench.sim.wait_for(lambda: "25%" in said(dm_status(fbench, job_id) or ChatMessage(0, 0, True, 0)))
    status = dm_status(fbench, job_id)
    assert status is not None
    await fbench.sim.press(PRIVATE, PRIVATE, status.message_id, f"cancel:{job_id}")  # its owner, where they follow it
    await fbench.finished(job_id)

    await fbench.sim.wait_for(lambda: not status.buttons)  # not left "running", its Cancel button gone
    assert "25%" not in said(status) and job_id in said(status), said(status)
    assert "cancelled" in said(status) and fbench.delivery(job_id) == "delivered"
    assert [m.message_id for m in fbench.sim.bot_photos(PRIVATE)] == [status.message_id]  # its preview, no result
    assert not any("fickle heron" in str(fields) for _, fields in group_calls(fbench))


async def test_private_progress_keeps_to_the_private_chats_flood_limits(fbench: FaultBench) -> None:
    fbench.backend = SteppingBackend()
    await fbench.open()
    sends = [fbench.sim.send_text(GROUP, PRIVATE, f"/imagine@test_bot heron {i} --private") for i in range(4)]
    await asyncio.gather(*sends)
    jobs: set[str] = set()

    def all_queued() -> bool:
        jobs.update(b.split(":")[1] for m in fbench.sim.visible(GROUP) if m.from_bot for b in m.buttons[:1])
        return len(jobs) >= 4

    await fbench.sim.wait_for(all_queued, 20)
    for job_id in jobs:
        await fbench.finished(job_id, 30)

    assert len(fbench.sim.bot_photos(PRIVATE)) == 4 and sends_to(fbench, "sendMessage", PRIVATE) == 4
    edits = [n for n, f in fbench.sim.calls if n.startswith("editMessage") and str(f.get("chat_id")) == str(PRIVATE)]
    assert edits, edits  # the statuses followed the progress there (a busy chat skips some, as in a group)
    assert fbench.sim.flood.refused == 0 and fbench.outbound.retry_after_count == 0  # paced, as in a group


@dataclass
class SteppingBackend(FakeBackend):
    """Ten progress reports, each with a preview, as fast as the event loop runs them."""

    async def generate(
        self, job_id: str, request: GenerationRequest, source: bytes | None, on_progress: ProgressCallback
    ) -> GenerationResult:
        for step in range(1, 11):
            on_progress(Progress(fraction=step / 10, step=step, steps=10, preview=png(32, 32, (step * 20, 0, 0))))
            await asyncio.sleep(0.01)  # a generation's steps take time: the notifier coalesces what comes meanwhile
        return GenerationResult(images=[GeneratedImage(data=png(64, 64), seed=request.seed)])
