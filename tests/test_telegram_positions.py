"""Telegram, through the real Application: a waiting job's status message follows the queue down."""

from __future__ import annotations

import asyncio

import pytest

from tests.gated import GatedBackend
from tests.test_telegram_support import PRIVATE, Bench, bench

pytestmark = pytest.mark.telegram
__all__ = ["bench"]


async def test_the_queued_message_is_edited_as_the_line_moves(bench: Bench) -> None:
    backend = bench.backend = GatedBackend()
    await bench.open()
    assert bench.app is not None
    bench.app.engine.positions.interval = 0.0
    await bench.sim.send_text(PRIVATE, PRIVATE, "/imagine the first")
    await bench.job_from(PRIVATE)
    async with asyncio.timeout(10):
        await backend.started.wait()
    ids = []
    for text in ("/imagine the second", "/imagine the third"):
        after = max(m.message_id for m in bench.sim.visible(PRIVATE))
        await bench.sim.send_text(PRIVATE, PRIVATE, text)
        ids.append(await bench.job_from(PRIVATE, after))
    third = next(m for m in bench.sim.visible(PRIVATE) if ids[1] in (m.text or ""))
    assert "Queued #2" in (third.text or "") and third.edits == 0
    backend.gates[0].set()  # the first finishes, the second starts: the third is next
    await bench.sim.wait_for(lambda: "Queued #1" in (third.text or ""))
    assert third.edits == 1
    for gate in backend.gates:
        gate.set()
    for job_id in ids:
        await bench.finished(job_id)
