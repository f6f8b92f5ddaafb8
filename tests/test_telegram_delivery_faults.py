"""Results that never arrived but were charged: albums of 4, refused albums, groups upgraded to supergroups,
the bot removed from a group or blocked by a user. Real PTB Application against the faulty simulator."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from adapters.telegram.pacing import ChatPacer
from simulators.telegram import TelegramSimulator
from simulators.telegram_methods import METHODS, Params
from simulators.telegram_state import ApiError
from tests.postgres_support import PostgresServer, drop_database, fresh_database, read_pg
from tests.telegram_faults_support import FaultBench, fault_bench, fbench
from tests.test_telegram_support import GROUP, PRIVATE

pytestmark = pytest.mark.telegram
__all__ = ["fbench"]


async def test_pacer_takes_more_messages_than_a_window_holds() -> None:
    now = [100.0]
    pacer = ChatPacer(clock=lambda: now[0])
    assert await pacer.acquire(42, 4)  # an album of 4 into an idle private chat
    assert pacer.delay(-1001, 10) == 0.0
    assert await pacer.acquire(-1001, 10)
    assert pacer.delay(-1001, 10) > 0  # the next album waits for the window to empty, it is not refused


async def test_album_of_four_is_delivered(fbench: FaultBench) -> None:
    await fbench.open()
    job_id = await fbench.imagine(PRIVATE, PRIVATE, "/imagine four cats --n 4 --preset sd15")
    photos = fbench.sim.bot_photos(PRIVATE)
    assert len(photos) == 4 and len({m.media_group_id for m in photos}) == 1
    assert any(f"upscale:{job_id}:3" in m.buttons for m in fbench.sim.visible(PRIVATE))
    assert fbench.delivery(job_id) == "delivered" and fbench.ledger(job_id) == "settled"


async def test_album_telegram_refuses_is_reported_marked_and_refunded(
    fbench: FaultBench, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def refuse(sim: TelegramSimulator, params: Params) -> Any:
        raise ApiError(400, "Bad Request: group send failed")

    monkeypatch.setitem(METHODS, "sendmediagroup", refuse)
    await fbench.open()
    await fbench.sim.send_text(PRIVATE, PRIVATE, "/imagine two dogs --n 2 --preset sd15")
    job_id = await fbench.job_from(PRIVATE)
    await fbench.finished(job_id)
    await fbench.sim.wait_for(
        lambda: any("could not send the result" in (m.text or "") for m in fbench.sim.visible(PRIVATE))
    )
    assert fbench.delivery(job_id) == "undeliverable" and fbench.ledger(job_id) == "refunded"
    assert fbench.sim.count("sendMediaGroup") == 1, "a refusal is not retried"


async def test_group_upgraded_to_supergroup_is_followed(fbench: FaultBench) -> None:
    fbench.sim.add_group(-77, title="small group")
    fbench.backend.hold = True
    await fbench.open()
    await fbench.sim.send_text(-77, 5, "/imagine@test_bot a lighthouse --preset sd15")
    job_id = await fbench.job_from(-77)
    await fbench.backend.started.wait()
    new_id = await fbench.sim.upgrade(-77, announce=False)  # no service message: the 400 on a send tells the bot
    fbench.backend.release.set()
    await fbench.finished(job_id)
    assert [m for m in fbench.sim.bot_photos(new_id) if f"reroll:{job_id}" in m.buttons]
    assert fbench.delivery(job_id) == "delivered"
    assert fbench.rows("SELECT channel_id, server_id FROM jobs WHERE id = ?", (job_id,)) == [(str(new_id),) * 2]
    assert [e for e in fbench.sim.errors if "upgraded" in e[2]], "the bot met the old id and learned the new one"
    assert fbench.sim.count("sendPhoto") == 1, "no retries against the dead id"


async def test_group_upgrade_announced_moves_queued_jobs(fbench: FaultBench) -> None:
    fbench.sim.add_group(-78, title="another group")
    fbench.backend.hold = True
    await fbench.open()
    await fbench.sim.send_text(-78, 5, "/imagine@test_bot first --preset sd15")
    first = await fbench.job_from(-78)
    await fbench.backend.started.wait()
    await fbench.sim.send_text(-78, 6, "/imagine@test_bot second --preset sd15")
    second = await fbench.job_from(-78, after=max(m.message_id for m in fbench.sim.visible(-78)))
    assert fbench.app is not None
    accounts = fbench.app.services.accounts
    settings = (await accounts.server("telegram", "-78")).copy()
    settings.language = "zh"
    await accounts.save_server(settings)
    new_id = await fbench.sim.upgrade(-78)
    await fbench.sim.wait_for(lambda: bool(fbench.rows("SELECT 1 FROM jobs WHERE channel_id = ?", (str(new_id),))))
    fbench.backend.hold = False
    fbench.backend.release.set()
    await fbench.finished(first)
    await fbench.finished(second)
    shown = {job for m in fbench.sim.bot_photos(new_id) for job in (first, second) if f"reroll:{job}" in m.buttons}
    assert shown == {first, second}
    assert not [e for e in fbench.sim.errors if e[1] == 400 and "upgraded" in e[2]], "the service message sufficed"
    assert (await accounts.server("telegram", str(new_id))).language == "zh", "the chat's settings came along"


async def kicked_cancels_and_refunds(bench: FaultBench, ledger: Callable[[str], str]) -> None:
    """The bot removed from a group: its running and waiting jobs end refunded, the waiting one never runs."""
    bench.backend.hold = True
    await bench.open()
    await bench.sim.send_text(GROUP, 5, "/imagine@test_bot running --preset sd15")
    running = await bench.job_from(GROUP)
    await bench.backend.started.wait()
    before = max(m.message_id for m in bench.sim.visible(GROUP))
    await bench.sim.send_text(GROUP, 6, "/imagine@test_bot waiting --preset sd15")
    waiting = await bench.job_from(GROUP, after=before)
    await bench.sim.kick(GROUP)
    await bench.finished(running, within=20)
    await bench.finished(waiting, within=20)
    assert ledger(running) == "refunded" and ledger(waiting) == "refunded"
    assert [job for job, _ in bench.backend.calls] == [running], "the waiting job never ran"
    assert bench.sim.bot_photos(GROUP) == []


async def test_kicked_from_group_cancels_and_refunds_its_jobs(fbench: FaultBench) -> None:
    await kicked_cancels_and_refunds(fbench, fbench.ledger)
    await fbench.sim.add_back(GROUP)
    fbench.backend.hold = False
    again = await fbench.imagine(GROUP, 5, "/imagine@test_bot welcome back --preset sd15")
    assert fbench.delivery(again) == "delivered" and fbench.ledger(again) == "settled"


async def test_kicked_from_group_on_postgresql_cancels_the_shared_queues_jobs(
    tmp_path: Path, postgres_server: PostgresServer
) -> None:
    """On PostgreSQL the waiting job is read from the shared queue (the views' replica), not this process's memory."""
    url = await fresh_database(postgres_server)

    def ledger(job_id: str) -> str:
        found = read_pg(url, f"SELECT state FROM quota_ledger WHERE job_id = '{job_id}'")
        return str(found[0][0]) if found else "none"

    try:
        async with fault_bench(tmp_path / "data", storage={"url": url}) as bench:
            await kicked_cancels_and_refunds(bench, ledger)
    finally:
        await drop_database(postgres_server, url)


async def test_blocked_user_403_on_send_cancels_the_queue(fbench: FaultBench) -> None:
    fbench.backend.hold = True
    await fbench.open()
    await fbench.sim.send_text(PRIVATE, PRIVATE, "/imagine one --preset sd15")
    first = await fbench.job_from(PRIVATE)
    await fbench.backend.started.wait()
    before = max(m.message_id for m in fbench.sim.visible(PRIVATE))
    await fbench.sim.send_text(PRIVATE, PRIVATE, "/imagine two --preset sd15")
    second = await fbench.job_from(PRIVATE, after=before)
    fbench.sim.gone[PRIVATE] = "Forbidden: bot was blocked by the user"  # the my_chat_member update was missed
    fbench.backend.release.set()
    await fbench.finished(first)
    await fbench.finished(second)
    assert fbench.delivery(first) == "undeliverable" and fbench.ledger(first) == "refunded"
    # The next job may have started beside the first one's delivery: it is stopped or not delivered, not charged.
    assert fbench.delivery(second) == "undeliverable" and fbench.ledger(second) == "refunded"
    assert fbench.sim.bot_photos(PRIVATE) == []
    assert fbench.sim.refused_gone <= 4, "no retry storm against the dead chat"
