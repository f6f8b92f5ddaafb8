"""Delivery once and only where it belongs: slow and lost answers, status messages that outlive their job,
the pacer after a restart, forged Delete buttons and live @mentions."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import pytest

from bot.app import build_app
from bot.models import DeliveryState, Job
from bot.replies import Reply
from commands.dispatch import dispatch_text
from simulators.telegram_faults import FaultyTelegramSimulator
from tests.conftest import invocation, make_settings
from tests.fakes import FakeBackend, RecordingOutbound
from tests.reliability_support import deliveries
from tests.telegram_faults_support import FaultBench, fault_config, fbench
from tests.test_telegram_support import GROUP, PRIVATE, keyboard_message

pytestmark = pytest.mark.telegram
__all__ = ["fbench"]
log = logging.getLogger(__name__)


async def test_slow_upload_answers_are_waited_for_not_sent_again(fbench: FaultBench) -> None:
    fbench.config = fault_config(fbench.sim, read_timeout_seconds=0.3, upload_timeout_seconds=10.0)
    fbench.sim.slow["sendphoto"] = 1.0  # slower than an ordinary call may take, well within an upload's time
    await fbench.open()
    job_id = await fbench.imagine(PRIVATE, PRIVATE, "/imagine a slow upload --preset sd15")
    assert deliveries(fbench.sim)[job_id] == 1 and fbench.sim.count("sendPhoto") == 1


async def test_lost_answers_never_lose_a_result(fbench: FaultBench) -> None:
    """Telegram has no idempotency key: a result whose answer was lost is sent again (at least once)."""
    fbench.sim.lose["sendphoto"] = 1
    await fbench.open()
    job_id = await fbench.imagine(PRIVATE, PRIVATE, "/imagine a lost answer --preset sd15")
    shown = deliveries(fbench.sim)[job_id]
    log.warning("lost answers: %d lost, result shown %d time(s)", len(fbench.sim.lost), shown)
    assert fbench.sim.lost == ["sendphoto"] and 1 <= shown <= 2
    assert fbench.delivery(job_id) == "delivered"


async def test_reroll_leaves_no_stale_status_message(fbench: FaultBench) -> None:
    await fbench.open()
    job_id = await fbench.imagine(PRIVATE, PRIVATE, "/imagine a harbour --preset sd15")
    keys = keyboard_message(fbench, PRIVATE, job_id)
    fbench.sim.slow["answercallbackquery"] = 0.5  # the button's answer is slow; the new job is not
    before = max(m.message_id for m in fbench.sim.visible(PRIVATE))
    await fbench.sim.press(PRIVATE, PRIVATE, keys.message_id, f"reroll:{job_id}")
    reroll = await fbench.job_from(PRIVATE, before)
    await fbench.finished(reroll)

    def stale() -> bool:
        return any(f"cancel:{reroll}" in m.buttons for m in fbench.sim.visible(PRIVATE))

    await fbench.sim.wait_for(lambda: fbench.sim.count("answerCallbackQuery") >= 1)
    with pytest.raises(TimeoutError):
        await fbench.sim.wait_for(stale, 1.5)
    assert [m for m in fbench.sim.bot_photos(PRIVATE) if f"reroll:{reroll}" in m.buttons]


async def test_restart_does_not_burst_into_flood_limits(tmp_path: Path) -> None:
    sim = FaultyTelegramSimulator(time_scale=0.1)  # a group allows 20 messages per 6 s here
    await sim.start()
    sim.add_chat(GROUP, title="busy")
    bench = FaultBench(
        sim=sim, backend=FakeBackend(), data_dir=tmp_path / "data", config=fault_config(sim, flood_time_scale=0.11)
    )
    try:
        await bench.open()
        for index in range(18):
            await bench.outbound.send_text(GROUP, Reply(text=f"before {index}"), None)
        await bench.restart()
        refused_before = sim.flood.refused
        for index in range(6):
            await bench.outbound.send_text(GROUP, Reply(text=f"after {index}"), None)
        after = sim.flood.refused - refused_before
        log.warning("429s after restart: %d (before it: %d)", after, refused_before)
        assert refused_before == 0 and after == 0
        assert len([m for m in sim.visible(GROUP) if (m.text or "").startswith("after")]) == 6
    finally:
        await bench.close()
        await sim.stop()


async def test_forged_delete_touches_only_the_named_jobs_messages(fbench: FaultBench) -> None:
    await fbench.open()
    victim = await fbench.imagine(GROUP, 5, "/imagine@test_bot the victim's picture --preset sd15")
    attacker = await fbench.imagine(GROUP, 7, "/imagine@test_bot the attacker's picture --preset sd15")
    target = keyboard_message(fbench, GROUP, victim)
    query = await fbench.sim.press_forged(GROUP, 7, target.message_id, f"delete:{attacker}")
    await fbench.sim.wait_for(lambda: query in fbench.sim.callback_answers)
    own = keyboard_message(fbench, GROUP, attacker)
    await fbench.sim.wait_for(lambda: own.deleted)  # the attacker's own job: its messages go
    assert not target.deleted, "the victim's message stays"
    assert deliveries(fbench.sim)[victim] == 1


async def test_mentions_in_prompts_do_not_notify_anyone(fbench: FaultBench) -> None:
    await fbench.open()
    job_id = await fbench.imagine(GROUP, 5, "/imagine@test_bot a portrait of @someone_else and @admin --preset sd15")
    result = keyboard_message(fbench, GROUP, job_id)
    assert "someone_else" in (result.caption or "")
    assert fbench.sim.mentions(GROUP) == []
    info = await fbench.sim.press(GROUP, 5, result.message_id, f"info:{job_id}")
    await fbench.sim.wait_for(lambda: info in fbench.sim.callback_answers)
    await fbench.sim.wait_for(lambda: any("Prompt:" in (m.text or "") for m in fbench.sim.visible(GROUP)))
    assert fbench.sim.mentions(GROUP) == []


class HeldOutbound(RecordingOutbound):
    """Fails every first attempt; a chosen job's second attempt waits until released."""

    def __init__(self) -> None:
        super().__init__()
        self.hold: str | None = None
        self.release = asyncio.Event()
        self.entered = asyncio.Event()
        self.tried: set[str] = set()

    async def deliver(self, job: Job, reply: Reply) -> bool:
        if job.id not in self.tried:
            self.tried.add(job.id)
            return False
        if job.id == self.hold:
            self.entered.set()
            await self.release.wait()
        self.deliveries.append((job.id, reply))
        return True


async def test_delivery_sweep_reads_each_job_again(tmp_path: Path) -> None:
    outbound = HeldOutbound()
    app = await build_app(make_settings(tmp_path / "data"), [outbound], backends=[FakeBackend()])
    await app.start()
    try:
        ids = []
        for index in range(2):
            reply = await dispatch_text(app.services, invocation(), f"/imagine sweep {index}")
            assert reply is not None and reply.job_id
            ids.append(reply.job_id)
        async with asyncio.timeout(5):  # both first attempts failed and are over
            while True:
                app.engine.worker_changed.clear()
                if len(outbound.tried) == 2 and not app.engine._delivering:
                    break
                await app.engine.worker_changed.wait()
        app.engine._next_delivery.clear()
        outbound.hold = ids[0]
        sweep = asyncio.create_task(app.engine.deliver_pending())
        await outbound.entered.wait()  # the sweep listed both jobs and is stuck on the first
        job = await app.services.store.get(ids[1])
        assert job is not None and job.delivery is DeliveryState.PENDING
        assert await app.engine.deliver(job)  # the second is delivered another way meanwhile
        outbound.release.set()
        await sweep
        assert sorted(outbound.delivered_ids()) == sorted(ids), "each job delivered once"
    finally:
        await app.stop()


async def test_redelivery_sends_only_the_parts_not_yet_accepted(fbench: FaultBench) -> None:
    await fbench.open()
    job_id = await fbench.imagine(PRIVATE, PRIVATE, "/imagine two birds --n 2 --preset sd15")
    keys = keyboard_message(fbench, PRIVATE, job_id)
    album = fbench.sim.bot_photos(PRIVATE)
    assert len(album) == 2
    # As if the process died after the album was accepted and before the keyboard message went out.
    keys.deleted = True
    assert fbench.app is not None
    store = fbench.app.services.store
    await store.set_message(job_id, "telegram_results", f"{PRIVATE}:{','.join(str(m.message_id) for m in album)}")
    await store.set_message(job_id, "telegram_result_parts", "1")
    await store.set_delivery(job_id, DeliveryState.PENDING)
    job = await store.get(job_id)
    assert job is not None
    assert await fbench.app.engine.deliver(job)
    assert len(fbench.sim.bot_photos(PRIVATE)) == 2, "the album is not sent again"
    assert keyboard_message(fbench, PRIVATE, job_id).message_id != keys.message_id, "the keyboard is"
