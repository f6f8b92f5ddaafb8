"""Platform faults through the Telegram simulator and the real PTB Application: results are delivered where they
still can be, and nothing spins."""

from __future__ import annotations

import logging
from typing import Any

import pytest

import bot.engine
from simulators.telegram import TelegramSimulator
from simulators.telegram_methods import METHODS, Params
from simulators.telegram_state import ApiError
from tests.reliability_support import Handler, deliveries
from tests.test_telegram_support import GROUP, PRIVATE, Bench, bench

pytestmark = pytest.mark.reliability
log = logging.getLogger(__name__)
__all__ = ["bench"]

SENDS = ("sendphoto", "sendmessage", "sendmediagroup", "senddocument", "sendchataction", "deletemessage")
EDITS = ("editmessagetext", "editmessagemedia", "editmessagecaption")


def fail_first(monkeypatch: pytest.MonkeyPatch, method: str, times: int, code: int, text: str) -> list[int]:
    """The next `times` calls of `method` fail with `code`; returns a one-item list counting the failures."""
    original: Handler = METHODS[method]
    failed = [0]

    async def flaky(sim: TelegramSimulator, params: Params) -> Any:
        if failed[0] < times:
            failed[0] += 1
            raise ApiError(code, text)
        return await original(sim, params)

    monkeypatch.setitem(METHODS, method, flaky)
    return failed


def kick_from(monkeypatch: pytest.MonkeyPatch, chat_id: int) -> dict[str, int]:
    """The bot was removed from `chat_id`: every send or edit there is 403 Forbidden. Returns attempts by method."""
    attempts: dict[str, int] = {}
    for method in (*SENDS, *EDITS):
        original: Handler = METHODS[method]

        async def forbidden(
            sim: TelegramSimulator, params: Params, method: str = method, original: Handler = original
        ) -> Any:
            if str(params.fields.get("chat_id")) == str(chat_id):
                attempts[method] = attempts.get(method, 0) + 1
                raise ApiError(403, "Forbidden: bot was kicked from the supergroup chat")
            return await original(sim, params)

        monkeypatch.setitem(METHODS, method, forbidden)
    return attempts


async def test_429_storm_loses_nothing(bench: Bench) -> None:
    bench.config = bench.config.model_copy(update={"flood_time_scale": 0.0001})  # the bot's own pacing is off
    await bench.open()
    for i in range(8):
        await bench.sim.send_text(GROUP, 10 + i, f"/imagine storm {i} --n 1")
    await bench.sim.wait_for(lambda: len(deliveries(bench.sim)) >= 8, 30)
    shown = deliveries(bench.sim)
    log.warning(
        "429 storm: refused=%d by method=%s, adapter waited out %d",
        bench.sim.flood.refused,
        bench.sim.flood.refused_by_method,
        bench.outbound.retry_after_count,
    )
    assert bench.sim.flood.refused > 0, "the storm happened"
    assert len(shown) == 8 and set(shown.values()) == {1}, "every result once"
    assert bench.sim.count("sendPhoto") <= 8 + bench.sim.flood.refused_by_method.get("sendPhoto", 0), "no spin"


async def test_5xx_on_send_photo_is_retried(bench: Bench, monkeypatch: pytest.MonkeyPatch) -> None:
    failed = fail_first(monkeypatch, "sendphoto", 3, 502, "Bad Gateway")
    await bench.open()
    job_id = await bench.imagine(PRIVATE, PRIVATE, "/imagine through a flaky gateway --n 1")
    assert failed[0] == 3
    assert deliveries(bench.sim)[job_id] == 1 and bench.sim.count("sendPhoto") == 4


async def test_deleted_status_message_still_gets_the_result(bench: Bench) -> None:
    bench.backend.hold = True
    await bench.open()
    sim = bench.sim
    await sim.send_text(PRIVATE, PRIVATE, "/imagine first --n 1")
    first = await bench.job_from(PRIVATE)
    before = max(m.message_id for m in sim.visible(PRIVATE))
    await sim.send_text(PRIVATE, PRIVATE, "/imagine second --n 1")
    second = await bench.job_from(PRIVATE, after=before)
    status = next(m for m in sim.visible(PRIVATE) if second in (m.text or ""))
    status.deleted = True  # the user deleted it before any progress edit reached it
    bench.backend.release.set()
    await bench.finished(first)
    await bench.finished(second)
    assert deliveries(sim)[second] == 1 and deliveries(sim)[first] == 1
    assert any("not found" in text for _, _, text in sim.errors), "the bot did reach for the deleted message"


async def test_bot_removed_from_chat_gives_up_and_others_keep_flowing(
    bench: Bench, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(bot.engine, "DELIVERY_RETRY_SECONDS", 0.05)  # the sweep retries undelivered results
    bench.backend.hold = True
    await bench.open()
    sim = bench.sim
    await sim.send_text(GROUP, 5, "/imagine for a chat that is about to remove the bot --n 1")
    lost = await bench.job_from(GROUP)
    attempts = kick_from(monkeypatch, GROUP)
    bench.backend.release.set()
    bench.backend.hold = False
    await sim.wait_for(lambda: attempts.get("sendphoto", 0) >= 1)
    other = await bench.imagine(PRIVATE, PRIVATE, "/imagine elsewhere --n 1")
    assert deliveries(sim)[other] == 1, "the engine still works for other chats"
    assert deliveries(sim)[lost] == 0
    assert bench.app is not None
    job = await bench.app.services.store.get(lost)
    assert job is not None and job.state.value == "succeeded", "the result is stored for when the bot is back"
    try:
        await sim.wait_for(lambda: attempts.get("sendphoto", 0) >= 5, 2.0)
    except TimeoutError:
        return  # delivery gave up after a bounded number of attempts
    pytest.fail(f"undeliverable result retried without end ({attempts})")
